import { randomUUID } from 'node:crypto'
import { Observable } from 'rxjs'
import type { Backend, ClientHandle, DeliveryResult } from '../backend/backend.js'
import { checkTopicFilter, checkTopicName } from '../packet/topic.js'
import type { PublishProperties, QoS } from '../packet/types.js'
import { isMessageExpired } from '../session/memory-session.js'
import type { Message, Session, StoredSubscription } from '../session/session.js'
import { isPromise } from '../util/awaitable.js'
import type { EventHub } from './events.js'
import type { Logger } from './logger.js'
import type { Clock } from './clock.js'

/** What `broker.publish` takes: one application message, published by the broker itself. */
export interface InlinePublish {
  /** A topic name (no wildcards). `$` topics are allowed: the broker itself publishes. */
  topic: string
  /** Bytes, or a string sent as UTF-8. Empty with `retain` deletes the retained message. */
  payload?: Buffer | Uint8Array | string
  /** Default 0. */
  qos?: QoS
  /** Default false. */
  retain?: boolean
  /** MQTT 5 properties forwarded to MQTT 5 subscribers (topic alias and subscription identifiers are ignored). */
  properties?: InlinePublishProperties | PublishProperties
  /** The tenant to publish to (undefined: the default tenant). */
  tenant?: string
}

/** Options of `broker.subscribe`. */
export interface InlineSubscribeOptions {
  /** Maximum QoS of the subscription (default 2): messages arrive at the lower of theirs and this. */
  qos?: QoS
  /** The tenant whose messages to receive (undefined: the default tenant). */
  tenant?: string
  /** Receive the retained messages that match, first (default true). */
  retained?: boolean
}

/** A message as an inline subscriber receives it. */
export interface InlineMessage {
  topic: string
  payload: Buffer
  /** The QoS of this delivery: the lower of the message's and the subscription's. */
  qos: QoS
  /** True for a retained message delivered at subscribe time. */
  retain: boolean
  properties?: PublishProperties
  tenant?: string
}

/** What the inline client needs of its broker. */
export interface InlineHost {
  readonly backend: Backend
  readonly events: EventHub
  readonly log: Logger
  /** False once the broker is closing. */
  isOpen(): boolean
  /** The live inline subscriptions: the broker closes them (completing their observers) when it closes. */
  readonly inline: Set<ClientHandle>
  /** Keeps track of asynchronous teardown work so the broker's `close()` awaits it. */
  track(work: Promise<void>): void
  /** The broker's clock (message timestamps, expiry). */
  readonly clock: Clock
}

/** MQTT 5 user properties: pairs, or an object of names to a value or a list of values. */
export type UserPropertiesInput = [string, string][] | Record<string, string | string[]>

/** The publish properties the inline client forwards, as given by embedding code or JSON. */
export interface InlinePublishProperties {
  payloadFormatIndicator?: boolean
  messageExpiryInterval?: number
  contentType?: string
  responseTopic?: string
  correlationData?: Buffer | Uint8Array | string
  userProperties?: UserPropertiesInput
}

/** Checks and converts publish properties; throws a `TypeError` naming the first bad one. */
export function publishProperties(input: InlinePublishProperties | PublishProperties): PublishProperties {
  if (typeof input !== 'object' || input === null) throw new TypeError('publish: properties must be an object')
  const out: PublishProperties = {}
  const p = input as Record<string, unknown>
  for (const key of Object.keys(p)) {
    const value = p[key]
    if (value === undefined) continue
    switch (key) {
      case 'payloadFormatIndicator':
        if (typeof value !== 'boolean') throw new TypeError('publish: payloadFormatIndicator must be a boolean')
        out.payloadFormatIndicator = value
        break
      case 'messageExpiryInterval':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
          throw new TypeError('publish: messageExpiryInterval must be an integer number of seconds from 0 to 4294967295')
        }
        out.messageExpiryInterval = value
        break
      case 'contentType':
      case 'responseTopic':
        if (typeof value !== 'string') throw new TypeError(`publish: ${key} must be a string`)
        if (key === 'responseTopic' && checkTopicName(value) !== undefined) throw new TypeError('publish: responseTopic must be a valid topic name')
        out[key] = value
        break
      case 'correlationData':
        if (typeof value === 'string') out.correlationData = Buffer.from(value, 'utf8')
        else if (value instanceof Uint8Array) out.correlationData = Buffer.from(value)
        else throw new TypeError('publish: correlationData must be a string or bytes')
        break
      case 'userProperties':
        out.userProperties = userProperties(value)
        break
      case 'topicAlias':
      case 'subscriptionIdentifiers':
        // Per receiver: never forwarded.
        break
      default:
        throw new TypeError(`publish: unknown property ${JSON.stringify(key)}`)
    }
  }
  return out
}

function userProperties(value: unknown): [string, string][] {
  const out: [string, string][] = []
  const bad = (): TypeError => new TypeError('publish: userProperties must be [name, value] pairs or an object of strings')
  if (Array.isArray(value)) {
    for (const pair of value as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') throw bad()
      out.push([pair[0], pair[1]])
    }
    return out
  }
  if (typeof value !== 'object' || value === null) throw bad()
  for (const [name, v] of Object.entries(value)) {
    if (typeof v === 'string') out.push([name, v])
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) for (const x of v as string[]) out.push([name, x])
    else throw bad()
  }
  return out
}

/** A `TypeError` explaining what is wrong with an inline publish, or the message to route. */
export function inlineMessage(input: InlinePublish, now: number): Message {
  if (typeof input !== 'object' || input === null) throw new TypeError('publish: expected { topic, payload, ... }')
  if (typeof input.topic !== 'string') throw new TypeError('publish: topic must be a string')
  const invalid = checkTopicName(input.topic)
  if (invalid !== undefined) throw new TypeError(`publish: ${invalid.message}`)
  const qos = input.qos ?? 0
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`publish: qos must be 0, 1 or 2, got ${String(qos)}`)
  const p = input.payload ?? Buffer.alloc(0)
  let payload: Buffer
  if (typeof p === 'string') payload = Buffer.from(p, 'utf8')
  else if (Buffer.isBuffer(p)) payload = p
  else if (p instanceof Uint8Array) payload = Buffer.from(p.buffer, p.byteOffset, p.byteLength)
  else throw new TypeError('publish: payload must be a string, a Buffer or a Uint8Array')
  const message: Message = { topic: input.topic, payload, qos, retain: input.retain === true, receivedAt: now }
  if (input.properties !== undefined) {
    const properties = publishProperties(input.properties)
    if (Object.keys(properties).length > 0) message.properties = properties
  }
  if (input.tenant !== undefined) message.tenant = input.tenant
  return message
}

/**
 * Publishes `input` through the backend without a connection: stored as retained first when
 * `retain` is set, then routed to every matching subscription (on every process, with a shared
 * backend). Resolves with the number of matching subscriptions when the backend tells it.
 */
export async function inlinePublish(host: InlineHost, input: InlinePublish): Promise<number | undefined> {
  if (!host.isOpen()) throw new Error('broker is closed')
  const message = inlineMessage(input, host.clock.now())
  if (message.retain) {
    const stored = host.backend.storeRetained(undefined, message)
    if (isPromise(stored)) await stored
  }
  if (host.events.observed) host.events.emit({ type: 'published', client: undefined, message })
  const routed = host.backend.publish(undefined, message)
  return isPromise(routed) ? await routed : routed
}

/**
 * The backend's view of one inline subscription: a client without a socket whose deliveries go to
 * an observer. Its client id is `$inline-<uuid>`, its session clean and ending with it.
 */
class InlineHandle implements ClientHandle {
  readonly clientId = `$inline-${randomUUID()}`
  readonly protocolLevel = 5 as const
  readonly username = undefined
  connected = true

  constructor(
    readonly tenant: string | undefined,
    private readonly next: (message: InlineMessage) => void,
    private readonly ended: () => void,
    private readonly clock: Clock
  ) {}

  deliver(message: Message, subscription: StoredSubscription, isRetained = false): DeliveryResult {
    if (!this.connected || isMessageExpired(message, this.clock.now())) return 'dropped'
    const out: InlineMessage = {
      topic: message.topic,
      payload: message.payload,
      qos: (message.qos < subscription.qos ? message.qos : subscription.qos) as QoS,
      retain: isRetained
    }
    if (message.properties !== undefined) out.properties = message.properties
    if (this.tenant !== undefined) out.tenant = this.tenant
    this.next(out)
    return 'sent'
  }

  close(): void {
    if (!this.connected) return
    this.connected = false
    this.ended()
  }
}

/**
 * Subscribes to `filter` without a socket: a cold Observable; each subscriber gets its own session
 * (set up at subscribe, ended at unsubscribe), so messages reach it from every process with a
 * shared backend. Errors with a `TypeError` for an invalid filter, with the backend's error when a
 * call fails; completes when the broker closes.
 */
export function inlineSubscribe(host: InlineHost, filter: string, options: InlineSubscribeOptions = {}): Observable<InlineMessage> {
  return new Observable<InlineMessage>((observer) => {
    const invalid = typeof filter === 'string' ? checkTopicFilter(filter) : new TypeError('subscribe: filter must be a string')
    const qos = options.qos ?? 2
    if (invalid !== undefined) {
      observer.error(new TypeError(`subscribe: ${invalid.message}`))
      return
    }
    if (qos !== 0 && qos !== 1 && qos !== 2) {
      observer.error(new TypeError(`subscribe: qos must be 0, 1 or 2, got ${String(qos)}`))
      return
    }
    if (!host.isOpen()) {
      observer.error(new Error('broker is closed'))
      return
    }
    const handle = new InlineHandle(
      options.tenant,
      (message) => observer.next(message),
      () => observer.complete(),
      host.clock
    )
    host.inline.add(handle)
    const subscription: StoredSubscription = { topicFilter: filter, qos }
    const backend = host.backend
    let session: Session | undefined
    const started = (async () => {
      const setup = backend.setup(handle, true, 0)
      session = (isPromise(setup) ? await setup : setup).session
      const offline = backend.queueOffline(handle, session)
      if (isPromise(offline)) await offline
      if (!handle.connected) return
      const granted = backend.subscribe(handle, session, [subscription])
      const [code] = isPromise(granted) ? await granted : granted
      if (code !== undefined && code >= 0x80) throw new Error(`subscribe: the backend refused ${filter} (reason code 0x${code.toString(16)})`)
      if (options.retained !== false && handle.connected) {
        const retained = backend.queueRetained(handle, subscription)
        if (isPromise(retained)) await retained
      }
    })()
    started.catch((error: unknown) => {
      handle.connected = false
      observer.error(error)
    })
    return () => {
      host.inline.delete(handle)
      handle.connected = false
      host.track(
        started
          .catch(() => undefined)
          .then(async () => {
            if (session === undefined) return
            const ended = backend.terminate(handle, session)
            if (isPromise(ended)) await ended
          })
          .catch((error: unknown) => host.log.warn('inline subscription teardown failed', { clientId: handle.clientId, error }))
      )
    }
  })
}
