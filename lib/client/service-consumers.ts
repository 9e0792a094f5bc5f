/**
 * How a Service hands inbound messages to the application: `messages$` (hot, every message),
 * `observe(filter)` (ref-counted SUBSCRIBE/UNSUBSCRIBE) and `messages(filter)` (an async iterator
 * where pulling the next message acknowledges the previous one). A message is acknowledged when
 * every consumer that took it is done with it: observers when `next` returned, an iterator when it
 * is asked for the next message (or with `ack: 'manual'` when the application calls `ack()`).
 */
import { Observable, Subject, share } from 'rxjs'
import type { Subscription as RxSubscription } from 'rxjs'
import { parseSharedSubscription, topicMatches } from '../packet/index.js'
import type { QoS } from '../packet/index.js'
import type { SubscribeOptions, SubscribeRequest } from './client-requests.js'
import type { InboundMessage, Message } from './inbound.js'

/** Options of `observe`. */
export interface ObserveOptions extends Omit<SubscribeRequest, 'topicFilter'> {
  qos?: QoS
  subscriptionIdentifier?: number
}

/** Options of `messages`. */
export interface MessagesOptions {
  /** 'auto' (default): pulling the next message acks the previous one; 'manual': `message.ack()`. */
  ack?: 'auto' | 'manual'
  /** Messages buffered for a slow consumer; beyond it the oldest QoS 0 message is dropped (default 1,000). QoS 1/2 are bounded by our Receive Maximum. */
  highWaterMark?: number
  signal?: AbortSignal
}

/** QoS 0 messages kept for the first consumer (the oldest are dropped beyond). */
const EARLY_QOS0 = 1000

/** What the consumers need of their Service: its (remembered, retried) subscribe and unsubscribe. */
export interface SubscriptionOwner {
  subscribe(subscriptions: readonly SubscribeRequest[], options: SubscribeOptions): Promise<unknown>
  unsubscribe(topicFilter: string): Promise<unknown>
}

interface Route {
  filter: string
  deliver: (message: Message) => void
}

/** See the module comment. */
export class Consumers {
  private readonly subject = new Subject<InboundMessage>()
  private readonly routes = new Set<Route>()
  private readonly ends = new Set<() => void>()
  private link: RxSubscription | undefined
  /**
   * Messages that came while nobody consumed anything (recovered ones at start, a persistent
   * session's backlog before the application subscribed): held, unacknowledged, and handed to the
   * first consumer. QoS 1/2 are bounded by our Receive Maximum, QoS 0 by `EARLY_QOS0`.
   */
  private early: Message[] = []
  readonly all$: Observable<InboundMessage> = new Observable<InboundMessage>((subscriber) => {
    const subscription = this.subject.subscribe(subscriber)
    this.flushEarly()
    return subscription
  })

  constructor(private readonly service: SubscriptionOwner) {}

  /** A new connection: take its messages (after the recovered ones, handed over again first). */
  attach(client: { readonly messages$: Observable<InboundMessage> }, recovered: Message[]): void {
    this.link?.unsubscribe()
    for (const message of recovered) this.dispatch(message)
    this.link = client.messages$.subscribe((message) => this.dispatch(message as Message))
  }

  private dispatch(message: Message): void {
    if (!this.subject.observed && this.routes.size === 0) {
      if (message.qos === 0 && this.early.length >= EARLY_QOS0) {
        const at = this.early.findIndex((m) => m.qos === 0)
        if (at >= 0) this.early.splice(at, 1)[0]?.release()
      }
      message.hold()
      this.early.push(message)
      return
    }
    message.hold()
    try {
      this.subject.next(message)
      for (const route of this.routes) if (topicMatches(route.filter, message.topic)) route.deliver(message)
    } finally {
      message.release()
    }
  }

  /** A consumer appeared: hand it what waited. */
  private flushEarly(): void {
    const early = this.early
    if (early.length === 0) return
    this.early = []
    for (const message of early) {
      this.dispatch(message)
      message.release()
    }
  }

  observe(topicFilter: string, options: ObserveOptions): Observable<InboundMessage> {
    const service = this.service
    const inner = parseSharedSubscription(topicFilter)?.filter ?? topicFilter
    return new Observable<InboundMessage>((subscriber) => {
      const route: Route = { filter: inner, deliver: (message) => subscriber.next(message) }
      this.routes.add(route)
      this.flushEarly()
      const { subscriptionIdentifier, ...rest } = options
      service.subscribe([{ ...rest, topicFilter }], { subscriptionIdentifier }).catch((error: unknown) => subscriber.error(error))
      return () => {
        this.routes.delete(route)
        service.unsubscribe(topicFilter).catch(() => undefined)
      }
    }).pipe(share())
  }

  iterate(topicFilter: string | undefined, options: MessagesOptions): AsyncIterableIterator<InboundMessage> {
    const manual = options.ack === 'manual'
    const highWaterMark = options.highWaterMark ?? 1000
    const buffer: Message[] = []
    let current: Message | undefined
    let wake: (() => void) | undefined
    let done = false
    const route: Route = {
      filter: topicFilter === undefined ? '#' : (parseSharedSubscription(topicFilter)?.filter ?? topicFilter),
      deliver: (message) => {
        // Held in both modes: auto releases it when the next one is pulled, manual only by ack().
        message.hold()
        if (buffer.length >= highWaterMark) {
          const at = buffer.findIndex((m) => m.qos === 0)
          if (at >= 0) buffer.splice(at, 1)[0]?.release()
        }
        buffer.push(message)
        wake?.()
      }
    }
    const finish = (): void => {
      if (done) return
      done = true
      this.routes.delete(route)
      this.ends.delete(finish)
      if (!manual) {
        current?.release()
        for (const m of buffer) m.release()
      }
      current = undefined
      buffer.length = 0
      wake?.()
    }
    this.routes.add(route)
    this.ends.add(finish)
    this.flushEarly()
    options.signal?.addEventListener('abort', finish, { once: true })
    const iterator: AsyncIterableIterator<InboundMessage> = {
      next: async () => {
        if (!manual) current?.release()
        current = undefined
        while (!done && buffer.length === 0) await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
        if (done) return { value: undefined, done: true }
        current = buffer.shift()!
        return { value: current, done: false }
      },
      return: async () => {
        finish()
        return { value: undefined, done: true }
      },
      [Symbol.asyncIterator]: () => iterator
    }
    return iterator
  }

  /** The Service stopped: complete every consumer. */
  complete(): void {
    this.link?.unsubscribe()
    this.early = []
    for (const end of [...this.ends]) end()
    this.subject.complete()
  }
}
