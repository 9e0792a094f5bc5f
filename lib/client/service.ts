/**
 * `Service`: a client that stays connected. It reconnects in the background with exponential
 * backoff and jitter (backoff.ts), keeps one `ClientSession` across connections (so promises
 * outlive reconnects and unacknowledged QoS 1/2 messages are resent in order with DUP), accepts
 * commands while offline (QoS 1/2 into the session, bounded; QoS 0 into a small bounded queue),
 * resubscribes when the broker has no session, and reports its state as an observable.
 */
import { BehaviorSubject, Subject, distinctUntilChanged, filter as filterOp, firstValueFrom, map } from 'rxjs'
import type { Observable } from 'rxjs'
import { PublishTemplate, ReasonCode, checkTopicName } from '../packet/index.js'
import type { ConnackPacket } from '../packet/index.js'
import { backoffDelay, stableDelay } from './backoff.js'
import type { BackoffOptions } from './backoff.js'
import { Client } from './client.js'
import { toSubscriptions } from './client-requests.js'
import { parseBrokerUrl } from './dial.js'
import type { SubscribeOptions, SubscribeRequest, SubscribeResult, UnsubscribeResult } from './client-requests.js'
import type { PublishOptions } from './client-outbound.js'
import { realClock } from './clock.js'
import type { Clock, Timer } from './clock.js'
import { CanceledError, ClosedError, ConnectionLostError, ConnectionRefusedError, InvalidRequestError, LimitError, OfflineError, ServerDisconnectError } from './errors.js'
import type { InboundMessage, Message } from './inbound.js'
import type { ClientOptions } from './options.js'
import { Consumers } from './service-consumers.js'
import type { MessagesOptions, ObserveOptions } from './service-consumers.js'
import { publishAll } from './service-publish.js'
import type { Delivered, Enqueued, OutgoingMessage, PublishAllOptions, PublishOutcome } from './service-publish.js'
import { ClientSession } from './session.js'
import type { PublishResult } from './session.js'
import { StoreJournal } from './store-journal.js'
import { MemoryStore } from './store/memory-store.js'
import type { ClientStore } from './store/store.js'

/** Options of a `Service`: the connection options plus reconnect, offline and session policy. */
export interface ServiceOptions extends Omit<ClientOptions, 'session' | 'signal'> {
  /** Brokers tried in turn, one per attempt (or `url`). */
  servers?: string[]
  /** Where the session is kept (default a `MemoryStore`: survives reconnects, not the process). */
  store?: ClientStore
  reconnect?: BackoffOptions & {
    /** 'transient-only' (default): a refusal for credentials/identity/protocol stops the Service; 'all' retries at maxDelayMs. */
    onRefused?: 'transient-only' | 'all'
    /** Follow an MQTT 5 Server Reference (CONNACK/DISCONNECT 0x9C, 0x9D), at most 3 hops. Default false. */
    followServerReference?: boolean
  }
  offline?: {
    /** Unfinished QoS 1/2 messages held (queued + in flight); beyond, `publish` rejects with `LimitError`. Default 100,000. */
    maxMessages?: number
    /** QoS 0 messages queued while offline (default 1,000; 0 rejects them with `OfflineError`). */
    qos0MaxMessages?: number
    /** Subscribe/unsubscribe calls waiting for a connection (default 1,000). */
    maxRequests?: number
  }
  /** When to resubscribe the registered filters after CONNACK (default 'if-session-lost'). */
  resubscribe?: 'if-session-lost' | 'always' | 'never'
  /** Random source in [0, 1) for the jitter (default Math.random). */
  random?: () => number
}

/** What the Service is doing. */
export type ServiceState =
  | { type: 'starting' }
  | { type: 'connecting'; attempt: number; server: string }
  | { type: 'online'; sessionPresent: boolean; connack: ConnackPacket }
  | { type: 'offline'; error: Error | undefined; retryInMs: number }
  | { type: 'stopped'; error?: Error | undefined }

interface Waiting {
  run: () => void
  fail: (error: Error) => void
}

/** See the module comment. */
export class Service {
  readonly session: ClientSession
  private readonly options: ServiceOptions
  private readonly store: ClientStore
  private readonly journal: StoreJournal
  private readonly clock: Clock
  private readonly random: () => number
  private readonly stateSubject = new BehaviorSubject<ServiceState>({ type: 'starting' })
  private readonly errorSubject = new Subject<Error>()
  private readonly deliveredSubject = new Subject<Delivered>()
  /** @internal */ readonly consumers: Consumers
  private client: Client | undefined
  private stopped = false
  private started: Promise<void> | undefined
  private backoffTimer: Timer | undefined
  private wakeBackoff: (() => void) | undefined
  private readonly connectAbort = new AbortController()
  private qos0: Waiting[] = []
  private requests: Waiting[] = []
  private recovered: Message[] = []
  private redirect: string | undefined
  private hops = 0
  private loop: Promise<void> | undefined

  constructor(options: ServiceOptions) {
    if (options.dialer === undefined && options.url === undefined && (options.servers ?? []).length === 0) {
      throw new InvalidRequestError('Service: no broker (give url, servers or dialer)')
    }
    for (const url of options.servers ?? (options.url !== undefined ? [options.url] : [])) parseBrokerUrl(url)
    this.options = options
    const level = options.protocolVersion ?? 4
    this.clock = options.clock ?? realClock
    this.random = options.random ?? Math.random
    this.store = options.store ?? new MemoryStore()
    this.session = new ClientSession(level)
    this.session.keep = true
    this.session.maxMessages = options.offline?.maxMessages ?? 100_000
    this.journal = new StoreJournal(this.store, this.session)
    this.journal.onLazyError = (error) => this.errorSubject.next(error instanceof Error ? error : new Error(String(error)))
    this.session.journal = options.store === undefined ? undefined : this.journal
    this.consumers = new Consumers(this)
    this.session.onDelivered = (record, result) => {
      if (!this.deliveredSubject.observed) return
      const delivered = { id: String(record.seq), topic: record.template.content.topic, qos: record.qos, reasonCode: result.reasonCode, recovered: record.acceptedAt < 0 }
      this.deliveredSubject.next(delivered)
    }
  }

  /**
   * Every outbound QoS 1/2 message the broker acknowledged (PUBACK, PUBCOMP; PUBREC when the
   * broker then lost the session), with the id `enqueue` gave it: hot, completes on stop. Messages
   * accepted by an earlier process and resent from the store come with `recovered: true`.
   */
  get delivered$(): Observable<Delivered> {
    return this.deliveredSubject.asObservable()
  }

  /** The state: replays the current one, completes after 'stopped'. */
  get state$(): Observable<ServiceState> {
    return this.stateSubject.asObservable()
  }

  /** true while connected, false otherwise (replays the current value, distinct changes only). */
  get online$(): Observable<boolean> {
    return this.stateSubject.pipe(map((state) => state.type === 'online'), distinctUntilChanged())
  }

  /** Background errors (failed attempts, lazy store writes): hot, never errors itself. */
  get errors$(): Observable<Error> {
    return this.errorSubject.asObservable()
  }

  /** Every inbound message, hot (acked when every observer returned, unless held). */
  get messages$(): Observable<InboundMessage> {
    return this.consumers.all$
  }

  /** The connected client, if any. */
  get current(): Client | undefined {
    return this.client
  }

  /** Open the store, restore the session and start connecting in the background. Resolves once the store is open. */
  start(): Promise<void> {
    this.started ??= this.open()
    return this.started
  }

  private async open(): Promise<void> {
    const level = this.session.protocolLevel
    const snapshot = await this.store.open({ clientId: this.options.clientId ?? '', protocolLevel: level })
    this.recovered = this.journal.restore(snapshot)
    for (const warning of snapshot.warnings) this.errorSubject.next(new Error(`session store: ${warning.code}: ${warning.message}`))
    this.loop = this.run()
  }

  /** Resolves at the next 'online' (at once when online); rejects with `ClosedError` when stopped first. */
  online(options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal
    if (signal?.aborted === true) return Promise.reject(new CanceledError({ cause: signal.reason }))
    const found = firstValueFrom(this.stateSubject.pipe(filterOp((s) => s.type === 'online' || s.type === 'stopped'))).then((s) => {
      if (s.type === 'stopped') throw new ClosedError()
    }, () => {
      throw new ClosedError()
    })
    if (signal === undefined) return found
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(new CanceledError({ cause: signal.reason }))
      signal.addEventListener('abort', onAbort, { once: true })
      found.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
    })
  }

  /**
   * Publish. Online: as `Client.publish`. Offline: QoS 1/2 are accepted into the session (bounded by
   * `offline.maxMessages`) and sent after the next CONNACK; QoS 0 waits in a small bounded queue.
   * Resolves when acknowledged per QoS, whatever reconnects happen in between; rejects with
   * `LimitError` when full, `ClosedError` when stopped, and as `Client.publish` otherwise.
   */
  publish(topic: string, payload: Buffer | Uint8Array | string, options: PublishOptions = {}): Promise<PublishResult> {
    if (this.stopped) return Promise.reject(new ClosedError())
    // Before start() the session is not restored from the store yet: nothing can be accepted.
    if (this.loop === undefined) return Promise.reject(new OfflineError('Service not started: call start() first'))
    const client = this.client
    if (client?.connected === true) return client.publish(topic, payload, options)
    const qos = options.qos ?? 0
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    const bad = checkTopicName(topic)
    if (bad !== undefined) return Promise.reject(new InvalidRequestError(bad.message, { reasonCode: bad.reasonCode, cause: bad }))
    if (qos === 1 || qos === 2) {
      const template = new PublishTemplate({ topic, payload: bytes, properties: options.properties }, this.session.protocolLevel)
      return this.session.accept(template, qos, options.retain ?? false, this.clock.now(), options.signal, options.onAccepted)
    }
    const max = this.options.offline?.qos0MaxMessages ?? 1000
    if (max === 0) return Promise.reject(new OfflineError())
    if (this.qos0.length >= max) return Promise.reject(new LimitError(`${this.qos0.length} QoS 0 messages queued while offline`))
    return this.whenOnline(this.qos0, (c) => c.publish(topic, bytes, options), options.signal)
  }

  /**
   * Accept a message for sending and resolve once it is accepted, not when it is acknowledged:
   * QoS 1/2 once it is in the session, and with a durable store once its record is durable (it
   * then survives a crash and is sent by the next process); QoS 0 once queued or handed to the
   * connection. Resolves with its `id` and `done` (the acknowledgement, as `publish` resolves);
   * rejects as `publish` does when it is not accepted (`LimitError`, `StoreError`, …).
   */
  enqueue(topic: string, payload: Buffer | Uint8Array | string, options: PublishOptions = {}): Promise<Enqueued> {
    let id: string | undefined
    let onAccepted: (() => void) | undefined
    const accepted = new Promise<void>((resolve) => (onAccepted = resolve))
    const qos = options.qos ?? 0
    const done = this.publish(topic, payload, qos === 0 ? options : { ...options, onAccepted: (seq) => {
      id = seq
      onAccepted!()
    } })
    done.catch(() => undefined)
    // A `done` already settled (refused at once) comes first in the race; QoS 0 is accepted now.
    return Promise.race([done, qos === 0 ? undefined : accepted]).then(() => ({ id, done }))
  }

  /**
   * Publish every message of `source` (iterable or async iterable), at most `concurrency`
   * unsettled, one `PublishOutcome` per message as it settles; see service-publish.ts.
   */
  publishAll(source: Iterable<OutgoingMessage> | AsyncIterable<OutgoingMessage>, options: PublishAllOptions = {}): Observable<PublishOutcome> {
    return publishAll((topic, payload, publish) => this.publish(topic, payload, publish), source, options)
  }

  /**
   * Subscribe, and remember the filters for resubscribing. Resolves on SUBACK, also when that comes
   * on a later connection (a SUBSCRIBE lost with its connection is sent again).
   */
  subscribe(subscriptions: string | SubscribeRequest | readonly (string | SubscribeRequest)[], options: SubscribeOptions = {}): Promise<SubscribeResult> {
    if (this.stopped) return Promise.reject(new ClosedError())
    const list = toSubscriptions(subscriptions)
    const registered = list.map((s) => ({ ...s, subscriptionIdentifier: options.subscriptionIdentifier }))
    return this.retrying((client) => client.subscribe(list, options), options.signal).then((result) => {
      for (const [i, s] of registered.entries()) if ((result.reasonCodes[i] ?? 0x80) < 0x80) this.session.subscriptions.set(s.topicFilter, s)
      this.journal.subscribed(registered.filter((s) => this.session.subscriptions.get(s.topicFilter) === s))
      return result
    })
  }

  /** Unsubscribe and forget the filters. */
  unsubscribe(filters: string | readonly string[], options: SubscribeOptions = {}): Promise<UnsubscribeResult> {
    if (this.stopped) return Promise.reject(new ClosedError())
    const list = typeof filters === 'string' ? [filters] : [...filters]
    for (const f of list) this.session.subscriptions.delete(f)
    this.journal.unsubscribed(list)
    return this.retrying((client) => client.unsubscribe(list, options), options.signal)
  }

  /** A cold, ref-counted subscription: SUBSCRIBE on the first observer, UNSUBSCRIBE after the last leaves. */
  observe(topicFilter: string, options: ObserveOptions = {}): Observable<InboundMessage> {
    return this.consumers.observe(topicFilter, options)
  }

  /** A pull consumer: taking the next message acknowledges the previous one (back-pressure for free). */
  messages(topicFilter?: string, options: MessagesOptions = {}): AsyncIterableIterator<InboundMessage> {
    return this.consumers.iterate(topicFilter, options)
  }

  /**
   * Stop: cancel reconnecting, DISCONNECT (after up to `drainMs` for unfinished QoS 1/2), settle
   * everything still pending with `ClosedError`, close the store. Idempotent.
   */
  async stop(options: { drainMs?: number; reasonCode?: number } = {}): Promise<void> {
    if (this.stopped) {
      await this.loop
      return
    }
    this.stopped = true
    this.backoffTimer?.cancel()
    this.wakeBackoff?.()
    this.connectAbort.abort(new ClosedError())
    const client = this.client
    if (client !== undefined) await client.end({ drainMs: options.drainMs, reasonCode: options.reasonCode })
    await this.loop
    const closed = new ClosedError()
    for (const waiting of [...this.qos0, ...this.requests]) waiting.fail(closed)
    this.qos0 = []
    this.requests = []
    for (const record of [...this.session.out.values()]) {
      // With a durable store the message stays in it and is sent by the next process.
      const outcome = record.state === 'queued' ? 'not-sent' : 'unknown'
      if (this.options.store === undefined) this.session.finish(record)
      record.settle?.(new ClosedError(outcome))
    }
    this.consumers.complete()
    this.deliveredSubject.complete()
    await this.store.close()
    this.setState({ type: 'stopped' })
    this.stateSubject.complete()
    this.errorSubject.complete()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  private setState(state: ServiceState): void {
    if (!this.stateSubject.closed) this.stateSubject.next(state)
  }

  /** Run `fn` on the connected client now or after the next CONNACK (bounded). */
  private whenOnline<T>(queue: Waiting[], fn: (client: Client) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (signal?.aborted === true) return Promise.reject(new CanceledError({ cause: signal.reason }))
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        const at = queue.indexOf(entry)
        if (at >= 0) queue.splice(at, 1)
        reject(new CanceledError({ cause: signal?.reason }))
      }
      const entry: Waiting = {
        run: () => {
          signal?.removeEventListener('abort', onAbort)
          const client = this.client
          if (client === undefined) reject(new ConnectionLostError('not-sent'))
          else fn(client).then(resolve, reject)
        },
        fail: (error) => {
          signal?.removeEventListener('abort', onAbort)
          reject(error)
        }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      queue.push(entry)
    })
  }

  /** Subscribe/unsubscribe: on the current connection, again on the next one if the connection drops first. */
  private async retrying<T>(fn: (client: Client) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    while (true) {
      const client = this.client
      try {
        if (client?.connected === true) return await fn(client)
        if (this.requests.length >= (this.options.offline?.maxRequests ?? 1000)) throw new LimitError('too many requests waiting for a connection')
        return await this.whenOnline(this.requests, fn, signal)
      } catch (error) {
        if (!(error instanceof ConnectionLostError) || this.stopped) throw error
        if (signal?.aborted === true) throw new CanceledError({ cause: signal.reason })
      }
    }
  }

  /** The supervisor loop: connect, stay online until the connection ends, back off, again. */
  private async run(): Promise<void> {
    const servers = this.options.servers ?? (this.options.url !== undefined ? [this.options.url] : [])
    let attempt = 0
    let turn = 0
    while (!this.stopped) {
      const server = this.redirect ?? servers[turn++ % Math.max(1, servers.length)] ?? 'dialer'
      this.redirect = undefined
      this.setState({ type: 'connecting', attempt, server })
      let client: Client
      try {
        client = await Client.open({
          ...this.options,
          url: server === 'dialer' ? undefined : server,
          clientId: this.clientId(),
          clock: this.clock,
          session: this.session,
          signal: this.connectAbort.signal
        }, (c) => this.onConnack(c))
      } catch (error) {
        if (this.stopped) break
        const delay = this.delayAfter(error as Error, attempt++)
        if (delay === undefined) {
          await this.giveUp(error as Error)
          break
        }
        await this.sleep(delay, error as Error)
        continue
      }
      this.client = client
      const since = this.clock.now()
      this.goOnline(client)
      const info = await client.closed
      this.client = undefined
      if (this.stopped) break
      const stable = this.clock.now() - since >= (this.options.reconnect?.stableAfterMs ?? 10_000)
      if (stable) attempt = 0
      const error = info.error
      if (error !== undefined) this.errorSubject.next(error)
      let delay = stable ? stableDelay(this.options.reconnect ?? {}, this.random) : this.delayAfter(error, attempt++)
      if (delay === undefined) {
        await this.giveUp(error ?? new ConnectionLostError())
        break
      }
      if (error instanceof ServerDisconnectError && error.reasonCode === ReasonCode.SessionTakenOver) delay = Math.max(delay, this.options.reconnect?.maxDelayMs ?? 60_000)
      await this.sleep(delay, error)
    }
  }

  /** The client id to send: the one the broker assigned earlier, once it assigned one. */
  private clientId(): string | undefined {
    return this.assignedId ?? this.options.clientId
  }

  private assignedId: string | undefined

  /** CONNACK: resubscribe (before anything queued is sent), then run what waited for a connection. */
  private onConnack(client: Client): void {
    const assigned = client.connack.properties?.assignedClientIdentifier
    if (assigned !== undefined) this.assignedId = assigned
    const policy = this.options.resubscribe ?? 'if-session-lost'
    const present = client.connack.sessionPresent && client.protocolLevel >= 4
    if (policy === 'always' || (policy === 'if-session-lost' && !present)) {
      // One SUBSCRIBE per subscription identifier (a SUBSCRIBE carries at most one).
      const groups = new Map<number | undefined, SubscribeRequest[]>()
      for (const s of this.session.subscriptions.values()) {
        const group = groups.get(s.subscriptionIdentifier) ?? []
        group.push(s)
        groups.set(s.subscriptionIdentifier, group)
      }
      for (const [id, subs] of groups) {
        client.subscribe(subs, { subscriptionIdentifier: client.protocolLevel === 5 ? id : undefined, allowPartial: true }).then(
          (result) => {
            const refused = subs.filter((_, i) => (result.reasonCodes[i] ?? 0) >= 0x80).map((s) => s.topicFilter)
            if (refused.length > 0) this.errorSubject.next(new InvalidRequestError(`resubscribe refused for ${refused.join(', ')}`))
          },
          (error: unknown) => this.errorSubject.next(error as Error)
        )
      }
    }
  }

  private goOnline(client: Client): void {
    this.consumers.attach(client, this.recovered.splice(0))
    this.hops = 0
    this.setState({ type: 'online', sessionPresent: client.connack.sessionPresent, connack: client.connack })
    const waiting = [...this.requests, ...this.qos0]
    this.requests = []
    this.qos0 = []
    for (const entry of waiting) entry.run()
  }

  /** The delay before the next attempt after `error`, or undefined to stop. */
  private delayAfter(error: Error | undefined, attempt: number): number | undefined {
    const policy = this.options.reconnect ?? {}
    const max = policy.maxDelayMs ?? 60_000
    const reference = error instanceof ConnectionRefusedError || error instanceof ServerDisconnectError ? error.serverReference : undefined
    if (reference !== undefined && policy.followServerReference === true && this.hops < 3) {
      this.hops++
      this.redirect = reference.includes('://') ? reference : `mqtt://${reference}`
      return 0
    }
    if (error instanceof ConnectionRefusedError) {
      if (error.transient) return max
      return (policy.onRefused ?? 'transient-only') === 'all' ? max : undefined
    }
    return backoffDelay(attempt, policy, this.random)
  }

  private async giveUp(error: Error): Promise<void> {
    this.errorSubject.next(error)
    this.stopped = true
    for (const waiting of [...this.qos0, ...this.requests]) waiting.fail(error)
    this.qos0 = []
    this.requests = []
    for (const record of [...this.session.out.values()]) {
      if (this.options.store === undefined) this.session.finish(record)
      record.settle?.(new ClosedError(record.state === 'queued' ? 'not-sent' : 'unknown', 'service stopped: ' + error.message, { cause: error }))
    }
    this.consumers.complete()
    this.deliveredSubject.complete()
    await this.store.close()
    this.setState({ type: 'stopped', error })
    this.stateSubject.complete()
    this.errorSubject.complete()
  }

  private sleep(ms: number, error: Error | undefined): Promise<void> {
    this.setState({ type: 'offline', error, retryInMs: ms })
    return new Promise((resolve) => {
      this.wakeBackoff = resolve
      this.backoffTimer = this.clock.setTimer(resolve, ms)
    })
  }
}
