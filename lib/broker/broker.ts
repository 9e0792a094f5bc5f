import type { Observable } from 'rxjs'
import type { Backend } from '../backend/backend.js'
import { checkBackendCapabilities } from '../backend/capabilities.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { Connection, ListenAddress } from '../transport/connection.js'
import { startListeners } from '../transport/listeners.js'
import type { BoundListener, ListenerConfig, Listeners } from '../transport/listeners.js'
import { isPromise } from '../util/awaitable.js'
import { Admission } from './admission.js'
import { Client } from './client.js'
import { MemoryRelease } from './memory-release.js'
import type { BrokerCore, CoreConnection } from './core.js'
import { DelayedWills } from './delayed-wills.js'
import type { DelayedWill } from './delayed-wills.js'
import type { Clock, ClockTimer } from './clock.js'
import { EventHub } from './events.js'
import type { BrokerClient, BrokerEvent } from './events.js'
import { createLogger } from './logger.js'
import type { Logger } from './logger.js'
import { resolveOptions } from './options.js'
import type { BrokerOptions, ResolvedOptions } from './options.js'
import { createStats, limitValues } from './stats.js'
import type { BrokerStats } from './stats.js'
import { publishWill } from './teardown.js'
import { SysPublisher } from './sys.js'
import type { TenantCounters } from './sys.js'
import type { ClientHandle } from '../backend/backend.js'
import type { Duplex } from 'node:stream'
import { inlinePublish, inlineSubscribe } from './inline.js'
import { OutputScheduler } from './output-scheduler.js'
import type { InlineHost, InlineMessage, InlinePublish, InlineSubscribeOptions } from './inline.js'


/** The counters every connection shares while `$SYS` is off (never read). */
const DISCARDED: TenantCounters = { received: 0, sent: 0 }
/**
 * Where to listen: `broker.listen(...)`. The short form for TCP and WebSocket; any listener
 * (`tls`, `wss`, `unix`, PROXY protocol...) as a `ListenerConfig`.
 */
export type ListenOptions =
  | { transport: 'tcp'; host?: string; port?: number; name?: string }
  | { transport: 'ws'; host?: string; port?: number; path?: string; name?: string }
  | ListenerConfig

/**
 * An MQTT broker: listeners, connections and their lifecycle. Every decision (authentication,
 * sessions, routing, retained messages, offline queues) goes to the `Backend`.
 *
 * - `listen()` binds a TCP or WebSocket listener (any number of them), `handle()` adopts a connection
 *   from any other transport (the in-memory pair in tests, a TLS server of your own).
 * - One shared timer (every `timerInterval` ms, default 1 s) enforces keepalive (1.5× [MQTT-3.1.2-24])
 *   and the connect timeout; no per-connection timers.
 * - Output is batched: what a connection must send while the broker handles one input chunk is
 *   written with one `write()` at the end of the chunk (or, for deliveries triggered outside input
 *   handling, in a `process.nextTick` callback once this turn's promise jobs ran: `OutputScheduler`).
 * - `events$` is hot and completes when `close()` finishes.
 */
export class Broker {
  /** The broker's event stream (hot; completes when the broker closed). Free when unobserved. */
  readonly events$: Observable<BrokerEvent>
  /** Counters (read-only for users). */
  readonly stats: BrokerStats
  readonly options: ResolvedOptions
  readonly backend: Backend
  readonly log: Logger

  private readonly hub = new EventHub()
  private readonly clients = new Set<Client>()
  private readonly listeners: Listeners[] = []
  private readonly core: BrokerCore
  private readonly admission: Admission
  /** Gives back the young generation a burst of connections grew, once quiet. */
  private readonly memoryRelease: MemoryRelease
  private readonly pending = new Set<Promise<void>>()
  /** When the connections' output is written (and back-pressure). */
  private readonly output = new OutputScheduler()
  private timer: ClockTimer | undefined = undefined
  /** The `$SYS` publisher (undefined when `sysInterval` is 0). */
  private readonly sys: SysPublisher | undefined
  private closing: Promise<void> | undefined = undefined
  /** Inline subscriptions (`subscribe`), closed with the broker. */
  private readonly inline = new Set<ClientHandle>()
  private readonly inlineHost: InlineHost
  /** Bytes of the connections that closed, per tenant. */
  private readonly closedBytes = new Map<string | undefined, { received: number; sent: number }>()
  /** Wills waiting for their Will Delay Interval. */
  private readonly delayedWills = new DelayedWills((delayed) => this.fireWill(delayed))

  /**
   * Throws `RangeError` for an option out of range, and `TypeError` for a `tenantResolver` with a
   * backend that does not declare `capabilities.tenants`.
   */
  constructor(options: BrokerOptions) {
    this.options = resolveOptions(options)
    checkBackendCapabilities(options.backend, { tenants: this.options.tenantResolver !== undefined })
    this.backend = options.backend
    this.log = options.logger ?? createLogger('warn')
    this.stats = createStats()
    this.admission = new Admission(this.options, this.stats, this.log)
    this.memoryRelease = new MemoryRelease({ threshold: this.options.idleMemoryRelease, counter: this.stats, log: this.log })
    this.events$ = this.hub.events$
    this.sys =
      this.options.sysInterval > 0
        ? new SysPublisher(
            {
              backend: this.backend,
              log: this.log,
              connectedPerTenant: () => this.connectedPerTenant(),
              brokerValues: () => limitValues(this.stats),
              trafficBytes: () => this.trafficBytes()
            },
            this.options.sysInterval,
            this.options.sysTopicPrefix,
            this.options.clock
          )
        : undefined
    this.core = {
      backend: this.backend,
      options: this.options,
      log: this.log,
      events: this.hub,
      stats: this.stats,
      admission: this.admission,
      tenantCounters: (tenant) => (this.sys === undefined ? DISCARDED : this.sys.counters(tenant)),
      output: this.output,
      outboundLimits: {
        window: this.options.inflightWindow,
        maxQueue: this.options.maxOutgoingQueue,
        maxQueueBytes: this.options.maxOutgoingQueueBytes,
        maxBufferedBytes: this.options.maxBufferedBytes
      },
      remove: (client) => this.remove(client),
      track: (work) => this.track(work),
      delayWill: (tenant, clientId, will, dueAt) => {
        this.delayedWills.delay(tenant, clientId, will, dueAt)
        this.startTimer()
      },
      settleDelayedWill: (tenant, clientId, clean) => this.delayedWills.settle(tenant, clientId, clean)
    }
    this.inlineHost = {
      backend: this.backend,
      events: this.hub,
      log: this.log,
      inline: this.inline,
      track: (work) => this.track(work),
      isOpen: () => this.closing === undefined,
      clock: this.options.clock
    }
  }

  /**
   * Publish a message from embedding code, without a socket (the inline client): stored as
   * retained first when `retain` is set, then routed like a client's PUBLISH to every matching
   * subscription (every process, with a shared backend). Rejects with a `TypeError` for an invalid
   * topic, QoS or payload; resolves with the number of matching subscriptions when the backend tells.
   */
  publish(message: InlinePublish): Promise<number | undefined> {
    return inlinePublish(this.inlineHost, message)
  }

  /**
   * Receive the messages matching `filter` without a socket (the inline client). Cold: each
   * subscriber gets its own clean session (client id `$inline-<uuid>`), set up when it subscribes
   * and ended when it unsubscribes; completes when the broker closes. See `InlineSubscribeOptions`.
   */
  subscribe(filter: string, options?: InlineSubscribeOptions): Observable<InlineMessage> {
    return inlineSubscribe(this.inlineHost, filter, options)
  }

  /**
   * PUBLISH packets received from / sent to each tenant's clients since the start (kept while
   * `$SYS` is on; empty otherwise).
   */
  tenantTraffic(): ReadonlyMap<string | undefined, TenantCounters> {
    return this.sys?.allCounters ?? new Map()
  }

  /** The addresses of the bound listeners. */
  get listenerAddresses(): BoundListener[] {
    return this.listeners.flatMap((listeners) => listeners.addresses)
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.closing !== undefined
  }

  /**
   * Bytes received from and sent to clients per tenant since the start (connections whose
   * transport exposes its socket's byte counts: TCP, TLS, Unix sockets), read when called.
   */
  trafficBytes(): Map<string | undefined, { received: number; sent: number }> {
    const out = new Map<string | undefined, { received: number; sent: number }>()
    for (const [tenant, bytes] of this.closedBytes) out.set(tenant, { ...bytes })
    for (const client of this.clients) addBytes(out, client.tenant, client.stream)
    return out
  }

  /** Number of wills waiting for their MQTT 5 Will Delay Interval. */
  get delayedWillCount(): number {
    return this.delayedWills.size
  }

  /**
   * Disconnect a live client from the server side: MQTT 5 clients get DISCONNECT with `reasonCode`
   * (default 0x98 Administrative action), `reasonString` and, for 0x9C Use another server / 0x9D
   * Server moved, `serverReference`. The will is published unless `reasonCode` is 0x00.
   *
   * `target` is a client id of the default tenant (connections without a tenant), or
   * `{ clientId, tenant }`: client ids are unique per tenant only, so a client of another tenant
   * with the same id is never touched. Returns false when no such client is connected.
   */
  disconnect(
    target: string | { clientId: string; tenant?: string },
    reasonCode: number = ReasonCode.AdministrativeAction,
    reasonString?: string,
    serverReference?: string
  ): boolean {
    const clientId = typeof target === 'string' ? target : target.clientId
    const tenant = typeof target === 'string' ? undefined : target.tenant
    for (const client of this.clients) {
      if (client.live && client.clientId === clientId && client.tenant === tenant) {
        client.close(reasonCode, reasonString, serverReference)
        return true
      }
    }
    return false
  }

  /** Live clients per tenant (`undefined`: the default tenant). */
  connectedPerTenant(): Map<string | undefined, number> {
    const out = new Map<string | undefined, number>()
    for (const client of this.clients) if (client.live) out.set(client.tenant, (out.get(client.tenant) ?? 0) + 1)
    return out
  }

  /**
   * Publishes the `$SYS` topics now (each tenant's, those whose value changed) instead of waiting
   * for the next `sysInterval`. Resolves when done; does nothing when `$SYS` is off.
   */
  async publishSys(): Promise<void> {
    if (this.closing !== undefined) return
    await this.sys?.publish()
  }

  /** Connected clients (CONNECT accepted and not closed). */
  get connectedClients(): BrokerClient[] {
    const out: BrokerClient[] = []
    for (const client of this.clients) if (client.live) out.push(client)
    return out
  }

  /**
   * Bind a listener. Resolves with the bound address (port 0 picks a free one); rejects with the
   * listen error (e.g. EADDRINUSE). WebSocket listeners serve `path` (default `/mqtt`).
   * Connections carry the listener's name (default `<kind>:<port>`), e.g. for tenant resolvers.
   */
  async listen(options: ListenOptions): Promise<ListenAddress> {
    const config: ListenerConfig =
      'kind' in options
        ? options
        : options.transport === 'tcp'
          ? { kind: 'tcp', host: options.host, port: options.port, name: options.name }
          : { kind: 'ws', host: options.host, port: options.port, path: options.path, name: options.name }
    const started = await this.listenAll([config])
    const bound = started.addresses[0]!
    const address: ListenAddress = { transport: bound.kind, host: bound.host, port: bound.port }
    if (bound.path !== undefined) address.path = bound.path
    return address
  }

  /**
   * Bind every listener of `configs`, all or none (see `startListeners`); `close()` closes them.
   * The result tells the bound addresses and reloads TLS certificates (`reloadCertificates()`).
   */
  async listenAll(configs: readonly ListenerConfig[]): Promise<Listeners> {
    if (this.closing !== undefined) throw new Error('broker is closed')
    const started = await startListeners(configs, this)
    if (this.closing !== undefined) {
      // Closed while binding: nothing may stay open.
      started.destroy()
      await started.close()
      throw new Error('broker is closed')
    }
    this.listeners.push(started)
    return started
  }

  /** Re-read the TLS files of every listener (e.g. on SIGHUP); rejects naming a listener that failed. */
  async reloadCertificates(): Promise<void> {
    const results = await Promise.allSettled(this.listeners.map((listeners) => listeners.reloadCertificates()))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }

  /** Adopt one connection (from a listener, or any transport the caller accepted). */
  handle(connection: Connection): void {
    if (this.closing !== undefined) {
      connection.stream.destroy()
      return
    }
    const client = new Client(this.core, connection)
    // Limits and overload: a refused connection is answered at its CONNECT (0x97, 0x9F, 0x89).
    const refusal = this.admission.admit(client)
    if (refusal === undefined) client.admitted = true
    else client.refusal = refusal
    this.clients.add(client)
    this.stats.connectionsAccepted++
    this.stats.connectionsOpen++
    this.startTimer()
  }

  /**
   * Stop: stop accepting on every listener, disconnect every client (MQTT 5 clients get DISCONNECT
   * 0x8B, Server shutting down), wait for their teardown (wills, `terminate`) and for their
   * connections to end, then `backend.close()`. Bounded by `drainTimeout`: what is still open then
   * is destroyed, and a backend that has not finished is left to finish on its own (logged).
   * Never rejects. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    const clock = this.options.clock
    const deadline = clock.now() + this.options.drainTimeout
    // Stop accepting now; these resolve once every accepted connection has ended.
    const listenersClosed = Promise.all(this.listeners.map((listeners) => listeners.close()))
    for (const client of [...this.clients]) client.shutdown('server', ReasonCode.ServerShuttingDown)
    for (const handle of [...this.inline]) handle.close()
    const drained = await settleBefore(
      clock,
      deadline,
      (async () => {
        await this.settlePending()
        // The sessions end with the broker: delayed wills are due now.
        this.delayedWills.fireAll()
        await this.settlePending()
        await listenersClosed
      })()
    )
    if (!drained) {
      this.log.warn('drain time over: destroying the connections left', {
        drainTimeout: this.options.drainTimeout,
        pending: this.pending.size
      })
      for (const listeners of this.listeners) listeners.destroy()
      for (const client of [...this.clients]) client.destroy()
    }
    this.listeners.length = 0
    if (this.timer !== undefined) clock.clearInterval(this.timer)
    this.timer = undefined
    this.admission.close()
    try {
      await this.sys?.stop()
      const closed = this.backend.close()
      if (isPromise(closed) && !(await settleBefore(clock, Math.max(deadline, clock.now() + 1000), closed))) {
        this.log.warn('backend still closing after the drain time', { drainTimeout: this.options.drainTimeout })
      }
    } catch (error) {
      this.log.error('backend close failed', { error })
    }
    this.hub.complete()
  }

  private async settlePending(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  private startTimer(): void {
    if (this.timer !== undefined) return
    this.timer = this.options.clock.setInterval(() => this.tick(), this.options.timerInterval)
    this.timer.unref()
  }

  /** The shared wheel: keepalive and connect timeout for every connection, one timer in all. */
  private tick(): void {
    const now = this.options.clock.now()
    this.admission.tick(now)
    for (const client of this.clients) {
      try {
        client.tick(now)
      } catch (error) {
        client.internalError(error)
      }
    }
    this.delayedWills.due(now)
    this.output.flushDirty(undefined)
    this.memoryRelease.tick()
  }

  private fireWill({ tenant, clientId, will }: DelayedWill): void {
    this.track(
      publishWill(this.core, will, clientId, tenant).catch((error: unknown) =>
        this.log.error('delayed will failed', { clientId, error })
      )
    )
  }

  private remove(connection: CoreConnection): void {
    // Only the broker's own connections (made in `handle`) call `core.remove`.
    const client = connection as Client
    if (!this.clients.delete(client)) return
    this.stats.connectionsOpen--
    if (client.admitted) this.admission.release(client)
    addBytes(this.closedBytes, client.tenant, client.stream)
  }

  private track(work: Promise<void>): void {
    this.pending.add(work)
    void work.finally(() => this.pending.delete(work))
  }
}

/**
 * Whether `work` settled before `deadline` (ms since the epoch, on `clock`). A rejection counts as settled
 * (teardown failures are logged where they happen).
 */
async function settleBefore(clock: Clock, deadline: number, work: Promise<unknown>): Promise<boolean> {
  let timer: ClockTimer | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = clock.setTimeout(() => resolve(false), Math.max(0, deadline - clock.now()))
  })
  try {
    return await Promise.race([work.then(() => true, () => true), timeout])
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer)
  }
}

/** Adds the byte counts of a socket-like stream (if it has them) to `tenant`'s totals in `into`. */
function addBytes(into: Map<string | undefined, { received: number; sent: number }>, tenant: string | undefined, stream: Duplex): void {
  const s = stream as Partial<{ bytesRead: number; bytesWritten: number }>
  if (typeof s.bytesRead !== 'number') return
  let bytes = into.get(tenant)
  if (bytes === undefined) {
    bytes = { received: 0, sent: 0 }
    into.set(tenant, bytes)
  }
  bytes.received += s.bytesRead
  bytes.sent += typeof s.bytesWritten === 'number' ? s.bytesWritten : 0
}
