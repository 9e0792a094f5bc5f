/**
 * One-call helpers (gomqtt's): publish one message, receive one message, clear a retained message,
 * clear a session, and MQTT 5 request/response. Each connects, does its one thing, disconnects, and
 * settles on every path (the connect timeout and `signal` bound it).
 */
import { randomBytes } from 'node:crypto'
import { filter, firstValueFrom } from 'rxjs'
import type { Observable } from 'rxjs'
import type { QoS } from '../packet/index.js'
import { Client } from './client.js'
import type { PublishOptions } from './client-outbound.js'
import type { SubscribeOptions, SubscribeRequest } from './client-requests.js'
import { CanceledError, InvalidRequestError } from './errors.js'
import type { InboundMessage } from './inbound.js'
import type { ClientOptions } from './options.js'
import type { PublishResult } from './session.js'

type Target = string | ClientOptions

function options(target: Target, extra: ClientOptions = {}): ClientOptions {
  return typeof target === 'string' ? { ...extra, url: target } : { ...target, ...extra }
}

/** Connect, publish one message (resolved when acknowledged per QoS), disconnect. */
export async function publishMessage(target: Target, topic: string, payload: Buffer | string, publish: PublishOptions = {}): Promise<PublishResult> {
  const client = await Client.connect(options(target, { signal: publish.signal }))
  try {
    return await client.publish(topic, payload, publish)
  } finally {
    await client.end()
  }
}

/** Connect, subscribe, take the first message matching, acknowledge it, disconnect. */
export async function receiveMessage(target: Target, topicFilter: string, receive: { qos?: QoS; signal?: AbortSignal } = {}): Promise<InboundMessage> {
  const client = await Client.connect(options(target, { signal: receive.signal }))
  try {
    const first = firstValueFrom(client.messages$)
    const aborted = abortPromise(receive.signal)
    await Promise.race([client.subscribe({ topicFilter, qos: receive.qos ?? 0 }, { signal: receive.signal }), aborted])
    const message = await Promise.race([first, aborted])
    // Copy: the payload view must outlive the connection's chunk.
    return { ...message, payload: Buffer.from(message.payload), ack: () => undefined }
  } finally {
    await client.end()
  }
}

/** Clear the retained message of `topic` (an empty retained PUBLISH, QoS 0). */
export async function clearRetained(target: Target, topic: string, signal?: AbortSignal): Promise<void> {
  await publishMessage(target, topic, Buffer.alloc(0), { retain: true, signal })
}

/**
 * Clear the broker's session of `clientId`: connect with a clean session (MQTT 5: Clean Start and
 * Session Expiry 0) and disconnect.
 */
export async function clearSession(target: Target, clientId: string, signal?: AbortSignal): Promise<void> {
  const base = options(target, { clientId, clean: true, signal })
  if (base.protocolVersion === 5) base.properties = { ...base.properties, sessionExpiryInterval: 0 }
  const client = await Client.connect(base)
  await client.end()
}

/** What `request` needs of a Client or a Service. */
export interface Requester {
  readonly messages$: Observable<InboundMessage>
  publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<PublishResult>
  subscribe(subscriptions: SubscribeRequest, options?: SubscribeOptions): Promise<unknown>
  unsubscribe(filters: string, options?: SubscribeOptions): Promise<unknown>
}

/**
 * MQTT 5 request/response: subscribe to `responseTopic`, publish with Response Topic and a fresh
 * Correlation Data, resolve with the first message on it carrying that correlation data.
 */
export async function request(
  client: Requester,
  topic: string,
  payload: Buffer | string,
  opts: { responseTopic: string; qos?: QoS; signal?: AbortSignal; keepSubscription?: boolean }
): Promise<InboundMessage> {
  if (opts.responseTopic === '') throw new InvalidRequestError('responseTopic must not be empty')
  const correlationData = randomBytes(16)
  const response = firstValueFrom(client.messages$.pipe(filter((m) => m.topic === opts.responseTopic && m.properties?.correlationData?.equals(correlationData) === true)))
  const aborted = abortPromise(opts.signal)
  await Promise.race([client.subscribe({ topicFilter: opts.responseTopic, qos: opts.qos ?? 1 }, { signal: opts.signal }), aborted])
  try {
    await Promise.race([client.publish(topic, payload, { qos: opts.qos ?? 1, properties: { responseTopic: opts.responseTopic, correlationData }, signal: opts.signal }), aborted])
    return await Promise.race([response, aborted])
  } finally {
    if (opts.keepSubscription !== true) await client.unsubscribe(opts.responseTopic).catch(() => undefined)
  }
}

function abortPromise(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (signal === undefined) return
    if (signal.aborted) reject(new CanceledError({ cause: signal.reason }))
    else signal.addEventListener('abort', () => reject(new CanceledError({ cause: signal.reason })), { once: true })
  })
}
