import { randomBytes } from 'node:crypto'
import { FakeClient } from '../../../lib/backend/conformance/index.js'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import type { KeyvBackendOptions } from '../../../lib/backend/keyv/index.js'
import type { ProtocolLevel } from '../../../lib/packet/types.js'
import type { Session, StoredSubscription } from '../../../lib/session/session.js'

/** A fake connection handle with a tenant. */
export class TenantClient extends FakeClient {
  override readonly tenant: string | undefined

  constructor(clientId: string, tenant: string | undefined, protocolLevel: ProtocolLevel = 5) {
    super(clientId, protocolLevel)
    this.tenant = tenant
  }
}

/** A random key root, so that the tests of one file never see each other's keys. */
export function randomRoot(): string {
  return `t${randomBytes(4).toString('hex')}`
}

/** Starts a KeyvBackend ("node") on `url`, ready. Log lines are collected in `logs`. */
export async function startNode(
  url: string,
  prefix: string,
  options: Partial<KeyvBackendOptions> & { logs?: string[] } = {}
): Promise<KeyvBackend> {
  const logs = options.logs
  const backend = new KeyvBackend({
    url,
    prefix,
    log: (level, message) => logs?.push(`${level}: ${message}`),
    heartbeatInterval: 500,
    ...options
  })
  await backend.ready()
  return backend
}

/** A connection made the way the engine makes one: setup, then queueOffline. */
export interface TestConnection {
  client: TenantClient
  session: Session
  present: boolean
  backend: KeyvBackend
}

/** Connects a fake client to `backend`. */
export async function connect(
  backend: KeyvBackend,
  clientId: string,
  options: { clean?: boolean; expiry?: number; tenant?: string; drain?: boolean } = {}
): Promise<TestConnection> {
  const clean = options.clean ?? true
  const expiry = options.expiry ?? (clean ? 0 : 0xffff_ffff)
  const client = new TenantClient(clientId, options.tenant)
  const { session, present } = await backend.setup(client, clean, expiry)
  if (options.drain !== false) await backend.queueOffline(client, session)
  return { client, session, present, backend }
}

/** Subscribes a connection. */
export async function subscribe(c: TestConnection, ...subscriptions: StoredSubscription[]): Promise<unknown[]> {
  return await c.backend.subscribe(c.client, c.session, subscriptions)
}

/** Ends a connection (the engine's terminate). */
export async function disconnect(c: TestConnection): Promise<void> {
  c.client.connected = false
  await c.backend.terminate(c.client, c.session)
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until `condition()` holds (polling every 5 ms), or fails after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}
