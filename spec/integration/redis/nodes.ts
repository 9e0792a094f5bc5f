import { randomBytes } from 'node:crypto'
import { FakeClient } from '../../../lib/backend/conformance/index.js'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import type { KeyvBackendOptions } from '../../../lib/backend/keyv/index.js'
import type { ProtocolLevel } from '../../../lib/packet/types.js'
import type { DeliveryResult } from '../../../lib/backend/backend.js'
import type { Message, Session, StoredSubscription } from '../../../lib/session/session.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'

/**
 * A fake connection handle with a tenant. Once `session` is set it behaves like the engine for
 * QoS 1/2: each delivery saves an outgoing record in the session (synchronously, during
 * `deliver`), which the client acknowledges at once (`autoAck`) or when the test calls
 * `deleteOutgoing` with one of `unacked`.
 */
export class TenantClient extends FakeClient {
  override readonly tenant: string | undefined
  session: Session | undefined = undefined
  autoAck = true
  readonly unacked: number[] = []

  constructor(clientId: string, tenant: string | undefined, protocolLevel: ProtocolLevel = 5) {
    super(clientId, protocolLevel)
    this.tenant = tenant
  }

  override deliver(m: Message, subscription: StoredSubscription, isRetained = false): DeliveryResult {
    const result = super.deliver(m, subscription, isRetained)
    const session = this.session
    if (result === 'sent' && Math.min(m.qos, subscription.qos) > 0 && session !== undefined) {
      const packetId = session.nextPacketId()
      void Promise.resolve(session.saveOutgoing({ kind: 'publish', packetId, message: m, subscription })).catch(() => undefined)
      if (this.autoAck) void Promise.resolve(session.deleteOutgoing(packetId)).catch(() => undefined)
      else this.unacked.push(packetId)
    }
    return result
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
    // Exact publish counts at QoS 0 too (the specs assert them).
    awaitQos0: true,
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
  client.session = session
  if (options.drain !== false) await backend.queueOffline(client)
  return { client, session, present, backend }
}

/** Subscribes a connection. */
export async function subscribe(c: TestConnection, ...subscriptions: StoredSubscription[]): Promise<unknown[]> {
  return await c.backend.subscribe(c.client, subscriptions)
}

/** Ends a connection (the engine's terminate). */
export async function disconnect(c: TestConnection): Promise<void> {
  c.client.connected = false
  await c.backend.terminate(c.client)
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

/** What `useRedisNodes` provides to the tests of a describe block (valid inside tests and hooks). */
export interface RedisNodes {
  /** The block's redis-server. */
  readonly server: RedisServer
  /** The key root of the current test (new for each test). */
  readonly root: string
  /** The current test's nodes, started on `root` before it and closed after it. */
  readonly nodes: KeyvBackend[]
}

/**
 * Mocha hooks for a describe block: one redis-server for the block, and for each test a fresh key
 * root with the nodes `nodeIds` started on it (`startNode`, with `options`) and closed afterwards.
 * Hooks the caller registers after this call run after these.
 */
export function useRedisNodes(nodeIds: string[], options: Partial<KeyvBackendOptions> = {}): RedisNodes {
  let server: RedisServer | undefined
  let root = ''
  let nodes: KeyvBackend[] = []
  before(async () => {
    server = await startRedisServer()
  })
  after(async () => {
    await server?.dispose()
  })
  beforeEach(async () => {
    root = randomRoot()
    nodes = await Promise.all(nodeIds.map((nodeId) => startNode((server as RedisServer).url, root, { ...options, nodeId })))
  })
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.close()))
  })
  return {
    get server() {
      if (server === undefined) throw new Error('redis-server not started (use it inside a test or hook)')
      return server
    },
    get root() {
      return root
    },
    get nodes() {
      return nodes
    }
  }
}
