import { MqttError } from '../packet/errors.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { ProtocolLevel } from '../packet/types.js'
import type { Awaitable } from '../util/awaitable.js'
import { isValidTenant } from './tenant-id.js'

/** What a tenant resolver sees of a CONNECT. */
export interface TenantRequest {
  /** The client identifier of the CONNECT ('' when the client asked the server to assign one). */
  readonly clientId: string
  /** The user name of the CONNECT, if any. */
  readonly username: string | undefined
  /**
   * The name of the listener the connection arrived on (the `name` it was given when the broker
   * started listening, else `<transport>:<port>`); undefined when the engine does not know.
   */
  readonly listener: string | undefined
  readonly protocolLevel: ProtocolLevel
}

/**
 * A resolved connection: its tenant (undefined: the default tenant) and the client id and user
 * name the engine and the backend use from then on (a resolver may strip the tenant part).
 */
export interface TenantResolution {
  readonly tenant: string | undefined
  readonly clientId: string
  readonly username: string | undefined
}

/**
 * A connection refused by a tenant resolver: the engine answers CONNACK with `reasonCode`
 * (MQTT 5; at 3.1.1 it maps 0x85 to return code 2 "identifier rejected", 0x86 to 4 "bad user name
 * or password" and 0x87 to 5 "not authorized") and closes the connection.
 *
 * Codes used by the built-in resolvers:
 * - 0x85 Client Identifier not valid: the tenant comes from the client id (`byClientIdPrefix`) and
 *   it has no tenant part, an empty rest, or an invalid tenant id; a custom resolver's invalid id.
 * - 0x86 Bad User Name or Password: the tenant comes from the user name (`byUsernameDomain`) and
 *   it is missing, has no domain, an empty user part, or an invalid tenant id.
 * - 0x87 Not authorized: the listener has no tenant and `byListener` was told to refuse those.
 * - 0x80 Unspecified error: a custom resolver threw.
 */
export class TenantError extends MqttError {
  override name = 'TenantError'

  constructor(reasonCode: number, message: string) {
    super(reasonCode, message)
  }
}

/**
 * Finds the tenant of a connection at CONNECT. Answers a `TenantResolution` or a `TenantError`
 * (returned, or thrown). Call it through `resolveTenant`, which also validates the tenant id.
 */
export type TenantResolver = (request: TenantRequest) => Awaitable<TenantResolution | TenantError>

/** Options of `byUsernameDomain`. */
export interface UsernameDomainOptions {
  /** Between user and tenant (default `@`); the last occurrence splits. */
  separator?: string
  /**
   * Whether the backend sees the user name without `@tenant` (default true: `alice@acme` is
   * authenticated as `alice` with `client.tenant` `acme`, so each tenant has its own user table).
   */
  strip?: boolean
  /** Refuse (0x86) a user name without a domain (default true); false: the default tenant. */
  required?: boolean
}

/**
 * Tenant from the user name's domain: `user@tenant` → tenant `tenant`, user name `user` (unless
 * `strip` is false). Refusals are 0x86 Bad User Name or Password.
 */
export function byUsernameDomain(options: UsernameDomainOptions = {}): TenantResolver {
  const separator = options.separator ?? '@'
  const strip = options.strip ?? true
  const required = options.required ?? true
  if (separator.length === 0) throw new TypeError('the separator must not be empty')
  return (request) => {
    const username = request.username
    const at = username === undefined ? -1 : username.lastIndexOf(separator)
    if (username === undefined || at < 0) {
      if (!required) return { tenant: undefined, clientId: request.clientId, username }
      return new TenantError(ReasonCode.BadUserNameOrPassword, `the user name must be user${separator}tenant`)
    }
    const user = username.slice(0, at)
    const tenant = username.slice(at + separator.length)
    if (user.length === 0) return new TenantError(ReasonCode.BadUserNameOrPassword, 'the user name has an empty user part')
    if (!isValidTenant(tenant)) return new TenantError(ReasonCode.BadUserNameOrPassword, `invalid tenant ${JSON.stringify(tenant)} in the user name`)
    return { tenant, clientId: request.clientId, username: strip ? user : username }
  }
}

/** Options of `byClientIdPrefix`. */
export interface ClientIdPrefixOptions {
  /** Between tenant and client id (default `:`); the first occurrence splits. */
  separator?: string
  /**
   * Whether the session is stored under the client id without `tenant:` (default true: the client
   * `acme:sensor-1` has the session `sensor-1` of tenant `acme`).
   */
  strip?: boolean
  /** Refuse (0x85) a client id without a tenant part, or an empty one (default true); false: the default tenant. */
  required?: boolean
}

/**
 * Tenant from a client-id prefix: `tenant:clientid` → tenant `tenant`, client id `clientid` (unless
 * `strip` is false). Refusals are 0x85 Client Identifier not valid. A client that asks the server
 * to assign its id (empty client id) has no tenant part.
 */
export function byClientIdPrefix(options: ClientIdPrefixOptions = {}): TenantResolver {
  const separator = options.separator ?? ':'
  const strip = options.strip ?? true
  const required = options.required ?? true
  if (separator.length === 0) throw new TypeError('the separator must not be empty')
  return (request) => {
    const clientId = request.clientId
    const at = clientId.indexOf(separator)
    if (at < 0) {
      if (!required) return { tenant: undefined, clientId, username: request.username }
      return new TenantError(ReasonCode.ClientIdentifierNotValid, `the client id must be tenant${separator}id`)
    }
    const tenant = clientId.slice(0, at)
    const rest = clientId.slice(at + separator.length)
    if (!isValidTenant(tenant)) return new TenantError(ReasonCode.ClientIdentifierNotValid, `invalid tenant ${JSON.stringify(tenant)} in the client id`)
    if (rest.length === 0) return new TenantError(ReasonCode.ClientIdentifierNotValid, 'the client id has an empty id after the tenant')
    return { tenant, clientId: strip ? rest : clientId, username: request.username }
  }
}

/** Options of `byListener`. */
export interface ListenerOptions {
  /** What a listener missing from the map gets: the default tenant (default) or a refusal (0x87). */
  unknown?: 'default' | 'refuse'
}

/**
 * A fixed tenant per listener: `byListener({ 'tcp:1883': 'acme', internal: undefined })`. Client
 * id and user name are unchanged. A listener mapped to undefined serves the default tenant.
 */
export function byListener(tenants: Readonly<Record<string, string | undefined>> | ReadonlyMap<string, string | undefined>, options: ListenerOptions = {}): TenantResolver {
  const map = tenants instanceof Map ? new Map(tenants) : new Map(Object.entries(tenants))
  for (const [listener, tenant] of map) {
    if (tenant !== undefined && !isValidTenant(tenant)) throw new TypeError(`invalid tenant id ${JSON.stringify(tenant)} for listener ${listener}`)
  }
  const refuse = options.unknown === 'refuse'
  return (request) => {
    const known = request.listener !== undefined && map.has(request.listener)
    if (!known && refuse) return new TenantError(ReasonCode.NotAuthorized, `listener ${String(request.listener)} serves no tenant`)
    const tenant = known ? map.get(request.listener as string) : undefined
    return { tenant, clientId: request.clientId, username: request.username }
  }
}

/**
 * A custom resolver from a function that answers a tenant id, undefined (the default tenant) or a
 * `TenantError`; client id and user name are unchanged. An invalid id refuses with 0x85.
 */
export function byFunction(fn: (request: TenantRequest) => Awaitable<string | undefined | TenantError>): TenantResolver {
  return (request) => {
    const answer = fn(request)
    const finish = (tenant: string | undefined | TenantError): TenantResolution | TenantError =>
      tenant instanceof TenantError ? tenant : { tenant, clientId: request.clientId, username: request.username }
    return answer instanceof Promise ? answer.then(finish) : finish(answer)
  }
}

/**
 * What the engine calls at CONNECT (before `Backend.authenticate`): runs `resolver` and answers its
 * resolution, or a `TenantError` to refuse the connection with. Never throws: a resolver that
 * throws a `TenantError` refuses with its code, any other exception with 0x80; a tenant id that
 * is not valid (`TENANT_ID_PATTERN`) refuses with 0x85.
 */
export async function resolveTenant(resolver: TenantResolver, request: TenantRequest): Promise<TenantResolution | TenantError> {
  let answer: TenantResolution | TenantError
  try {
    answer = await resolver(request)
  } catch (error) {
    if (error instanceof TenantError) return error
    return new TenantError(ReasonCode.UnspecifiedError, `the tenant resolver failed: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (answer instanceof TenantError) return answer
  if (answer.tenant !== undefined && !isValidTenant(answer.tenant)) {
    return new TenantError(ReasonCode.ClientIdentifierNotValid, `invalid tenant id ${JSON.stringify(answer.tenant)}`)
  }
  return answer
}
