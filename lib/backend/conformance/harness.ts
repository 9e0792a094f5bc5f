import type { ProtocolLevel, QoS, PublishProperties } from '../../packet/types.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { Backend, ClientHandle, DeliveryResult } from '../backend.js'
import type { Message, Session, StoredSubscription } from '../../session/session.js'
export { mochaGlobals } from '../../util/mocha-globals.js'
export type { MochaGlobals } from '../../util/mocha-globals.js'

/**
 * Optional abilities and bounds of the backend under test. A case that needs an ability the backend
 * lacks is not declared at all (never skipped).
 */
export interface BackendFeatures {
  /** MQTT 5 shared subscriptions `$share/{group}/{filter}` (default true). */
  sharedSubscriptions?: boolean
  /**
   * The MQTT 5 cases (default true): session expiry (waits over a second), message expiry in the
   * offline queue, subscription options and identifiers kept and honoured, retained properties, and
   * with `sharedSubscriptions` the hand-over of an ended member's shared messages.
   */
  mqtt5?: boolean
  /**
   * The offline queue bound the factory configures (`maxQueuedMessages`). When set (keep it small,
   * e.g. 5), the bound and its policy are tested: the oldest queued QoS 0 message is evicted first,
   * else the new message is refused.
   */
  maxQueuedMessages?: number
  /** The retained store bound the factory configures; when set (small, at least 8), the bound is tested. */
  maxRetainedMessages?: number
  /**
   * The backend keeps tenants apart and declares `capabilities.tenants` (default false). When true
   * the tenant isolation cases run; either way the suite checks the declaration says the same.
   */
  tenants?: boolean
  /** Whether `publish` returns the number of subscriptions reached (default true; else undefined is accepted). */
  publishCount?: boolean
  /**
   * How long (ms) to wait before concluding that a delivery does not come (default 0: one turn of
   * the event loop). Backends that deliver through another system (Redis pub/sub) need more.
   */
  settleMs?: number
  /** How long (ms) to wait for a delivery that must come (default 2000). */
  timeoutMs?: number
}

/** One `deliver` call recorded by a `FakeClient`. */
export interface Delivery {
  message: Message
  subscription: StoredSubscription
  isRetained: boolean
}

/**
 * A `ClientHandle` that records what a backend does to it: deliveries (in order), closes (with
 * their reason codes) and deliveries that arrived after it was closed (a backend bug).
 */
export class FakeClient implements ClientHandle {
  readonly clientId: string
  readonly protocolLevel: ProtocolLevel
  readonly username: string | undefined = undefined
  readonly tenant: string | undefined
  connected = true
  /** What `deliver` answers (tests set 'dropped' to simulate a client that refuses). */
  result: DeliveryResult = 'sent'
  readonly deliveries: Delivery[] = []
  readonly closes: { reasonCode: number | undefined; reasonString: string | undefined }[] = []
  /** Deliveries made after `close`: a backend must not deliver to a closed connection. */
  readonly late: Delivery[] = []

  constructor(clientId: string, protocolLevel: ProtocolLevel = 5, tenant?: string) {
    this.clientId = clientId
    this.protocolLevel = protocolLevel
    this.tenant = tenant
  }

  deliver(message: Message, subscription: StoredSubscription, isRetained = false): DeliveryResult {
    const delivery = { message, subscription, isRetained }
    if (!this.connected) {
      this.late.push(delivery)
      return 'dropped'
    }
    this.deliveries.push(delivery)
    return this.result
  }

  close(reasonCode?: number, reasonString?: string): void {
    this.closes.push({ reasonCode, reasonString })
    this.connected = false
  }

  /** Payloads delivered so far, as strings, in order. */
  payloads(): string[] {
    return this.deliveries.map((d) => d.message.payload.toString())
  }
}


/** A connected fake client with the session the backend gave it. */
export interface Connection {
  client: FakeClient
  session: Session
  present: boolean
}

/** Options of `Harness.connect`. */
export interface ConnectOptions {
  /** Clean session / clean start (default true). */
  clean?: boolean
  /** Session expiry interval in seconds (default: 0 when clean, 0xFFFFFFFF otherwise). */
  expiry?: number
  protocolLevel?: ProtocolLevel
  /** Whether to call `queueOffline` (default true). */
  drain?: boolean
  /** The tenant of the connection (`ClientHandle.tenant`; default none). */
  tenant?: string
}

/** Builds a message as the engine hands it to `publish`. */
export function message(
  topic: string,
  payload: string,
  qos: QoS = 0,
  extra: { retain?: boolean; properties?: PublishProperties; receivedAt?: number; origin?: string } = {}
): Message {
  const m: Message = {
    topic,
    payload: Buffer.from(payload),
    qos,
    retain: extra.retain ?? false,
    receivedAt: extra.receivedAt ?? Date.now()
  }
  if (extra.properties !== undefined) m.properties = extra.properties
  if (extra.origin !== undefined) m.origin = extra.origin
  return m
}

/** A subscription as the engine stores it. */
export function sub(topicFilter: string, qos: QoS = 0, extra: Partial<StoredSubscription> = {}): StoredSubscription {
  return { topicFilter, qos, ...extra }
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => (ms <= 0 ? setImmediate(resolve) : setTimeout(resolve, ms)))

/**
 * The state of one test case: a fresh backend from the factory and helpers that drive it the way
 * the engine does (setup → queueOffline on connect, terminate on disconnect).
 */
export class Harness {
  readonly features: BackendFeatures
  #backend: Backend | undefined = undefined
  readonly #factory: () => Awaitable<Backend>
  readonly #connections: Connection[] = []

  constructor(factory: () => Awaitable<Backend>, features: BackendFeatures) {
    this.#factory = factory
    this.features = features
  }

  /** The backend of the current case. */
  get backend(): Backend {
    if (this.#backend === undefined) throw new Error('no backend: the harness is not set up')
    return this.#backend
  }

  /** Whether `publish` counts are asserted. */
  get counts(): boolean {
    return this.features.publishCount !== false
  }

  async start(): Promise<void> {
    this.#backend = await this.#factory()
  }

  async stop(): Promise<void> {
    const backend = this.#backend
    this.#backend = undefined
    for (const c of this.#connections.splice(0)) c.client.connected = false
    if (backend !== undefined) await backend.close()
  }

  /** Connects a fake client: `setup`, then (by default) `queueOffline`. */
  async connect(clientId: string, options: ConnectOptions = {}): Promise<Connection> {
    const clean = options.clean ?? true
    const expiry = options.expiry ?? (clean ? 0 : 0xffff_ffff)
    const client = new FakeClient(clientId, options.protocolLevel ?? 5, options.tenant)
    const { session, present } = await this.backend.setup(client, clean, expiry)
    if (options.drain !== false) await this.backend.queueOffline(client)
    const connection = { client, session, present }
    this.#connections.push(connection)
    return connection
  }

  /** The connection ends: the handle closes and the backend is told (`terminate`). */
  async disconnect(connection: Connection): Promise<void> {
    connection.client.connected = false
    await this.backend.terminate(connection.client)
  }

  async subscribe(connection: Connection, ...subscriptions: StoredSubscription[]): Promise<unknown[]> {
    return await this.backend.subscribe(connection.client, subscriptions)
  }

  async publish(m: Message, from?: Connection): Promise<number | undefined> {
    return await this.backend.publish(from?.client, m)
  }

  /** Waits until `client` has at least `n` deliveries (or the timeout), then until things settle. */
  async deliveries(client: FakeClient, n: number): Promise<Delivery[]> {
    await this.until(() => client.deliveries.length >= n)
    return client.deliveries
  }

  /** Waits until `condition` holds (or the timeout), then until things settle. */
  async until(condition: () => boolean): Promise<void> {
    const deadline = Date.now() + (this.features.timeoutMs ?? 2000)
    while (!condition() && Date.now() < deadline) await sleep(2)
    await this.settle()
  }

  /** Gives a backend that delivers asynchronously the time to deliver what it would. */
  async settle(): Promise<void> {
    await sleep(this.features.settleMs ?? 0)
  }
}
