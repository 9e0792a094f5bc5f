/** What the routes of `/api/v1` share: their context, parameter parsing, the backend's optional methods. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BackendInspection } from '../backend/inspection.js'
import { NotInspectableError } from '../backend/inspection.js'
import type { Broker } from '../broker/broker.js'
import type { StoredSubscription } from '../session/session.js'
import { isValidTenant } from '../tenancy/tenant-id.js'
import { isPromise } from '../util/awaitable.js'
import type { Awaitable } from '../util/awaitable.js'
import { badRequest } from './respond.js'

/** The broker's backend with the optional inspection methods (and Redis availability). */
export type Inspectable = Broker['backend'] & BackendInspection & { available?: boolean }
export type Query = URLSearchParams

/** What a route handler gets. */
export interface RouteContext {
  broker: Broker
  backend: Inspectable
  request: IncomingMessage
  response: ServerResponse
  query: Query
  /** Path parameters, decoded. */
  params: string[]
  maxBodySize: number
}

/** One route of `/api/v1`: method, path pattern (after `/api/v1`), handler. */
export type Route = [method: string, pattern: RegExp, handler: (ctx: RouteContext) => Promise<void>]

export async function resolve<T>(value: Awaitable<T>): Promise<T> {
  return isPromise(value) ? await value : value
}

/** The `tenant` query parameter: undefined for the default tenant; 400 when not a valid id. */
export function tenantOf(query: Query): string | undefined {
  const tenant = query.get('tenant')
  if (tenant === null || tenant === '') return undefined
  if (!isValidTenant(tenant)) throw badRequest(`invalid tenant id ${JSON.stringify(tenant)}`)
  return tenant
}

/** An integer query parameter from `min` to `max` (400 otherwise). */
export function intParam(query: Query, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name)
  if (raw === null || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || n > max) throw badRequest(`${name} must be an integer from ${min} to ${max}`)
  return n
}

/** The backend's optional method, or 501 naming it. */
export function need<K extends keyof BackendInspection>(backend: Inspectable, method: K): NonNullable<BackendInspection[K]> {
  const fn = backend[method]
  if (typeof fn !== 'function') throw new NotInspectableError(method)
  return (fn as (...args: unknown[]) => unknown).bind(backend) as NonNullable<BackendInspection[K]>
}

/** A stored subscription as JSON. */
export function subscriptionJson(s: StoredSubscription): Record<string, unknown> {
  return {
    topic_filter: s.topicFilter,
    qos: s.qos,
    no_local: s.noLocal ?? false,
    retain_as_published: s.retainAsPublished ?? false,
    retain_handling: s.retainHandling ?? 0,
    subscription_identifier: s.subscriptionIdentifiers?.[0] ?? null
  }
}
