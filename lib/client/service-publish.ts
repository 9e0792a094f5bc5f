/**
 * The Service's publishing additions beyond `publish`: what `enqueue` returns, what `delivered$`
 * reports, and `publishAll`, a batch publish that settles per message.
 */
import { Observable } from 'rxjs'
import type { PublishProperties, QoS } from '../packet/index.js'
import type { PublishOptions } from './client-outbound.js'
import type { PublishResult } from './session.js'

/** What `Service.enqueue` resolves with: the message is accepted, its outcome comes later. */
export interface Enqueued {
  /**
   * The message's stable id (QoS 1/2: the session store's seq, the same after a restart and on
   * `delivered$`); undefined for QoS 0, which is never stored.
   */
  id: string | undefined
  /**
   * Settles as `publish` would: when the broker acknowledged the message (QoS 1/2), or once
   * written (QoS 0). It never causes an unhandled rejection when nobody awaits it.
   */
  done: Promise<PublishResult>
}

/** An outbound QoS 1/2 message the broker acknowledged (`Service.delivered$`). */
export interface Delivered {
  /** The id `enqueue` returned (the store's seq). */
  id: string
  topic: string
  qos: 1 | 2
  /** The PUBACK / PUBREC reason code (0x00, or 0x10 "no matching subscribers" at MQTT 5). */
  reasonCode: number
  /** Accepted by an earlier process (restored from the store): nobody holds a promise for it. */
  recovered: boolean
}

/** One message of `publishAll`. */
export interface OutgoingMessage {
  topic: string
  payload: Buffer | Uint8Array | string
  qos?: QoS
  retain?: boolean
  properties?: PublishProperties
}

/** How one message of `publishAll` ended: `result` when acknowledged, `error` otherwise. */
export interface PublishOutcome {
  /** Its position in the source. */
  index: number
  message: OutgoingMessage
  result?: PublishResult | undefined
  error?: Error | undefined
}

/** Options of `publishAll`. */
export interface PublishAllOptions {
  /** Messages unsettled at a time; the source is pulled only below it (default 1,000). */
  concurrency?: number
  /**
   * Aborting stops pulling the source (messages not pulled are not published and have no outcome);
   * the ones published settle as `publish` does with an aborted signal (`CanceledError` when not
   * sent yet, `AbandonedError` after).
   */
  signal?: AbortSignal
}

type Publish = (topic: string, payload: OutgoingMessage['payload'], options: PublishOptions) => Promise<PublishResult>

/**
 * Publish every message of `source` (an iterable or async iterable) with at most `concurrency`
 * unsettled, and emit one `PublishOutcome` per message as it settles (completion order). Errors of
 * single messages are outcomes, never the stream's error; the stream errors only when the source
 * itself throws, and completes once every message settled. Cold: each subscription publishes the
 * source anew; unsubscribing stops pulling (what was published goes on).
 */
export function publishAll(publish: Publish, source: Iterable<OutgoingMessage> | AsyncIterable<OutgoingMessage>, options: PublishAllOptions = {}): Observable<PublishOutcome> {
  const concurrency = Math.max(1, options.concurrency ?? 1000)
  return new Observable<PublishOutcome>((subscriber) => {
    const iterator: Iterator<OutgoingMessage> | AsyncIterator<OutgoingMessage> = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]()
    let unsettled = 0
    let index = 0
    let exhausted = false
    let pulling = false
    let stopped = false
    const finish = (): void => {
      if (exhausted && unsettled === 0 && !subscriber.closed) subscriber.complete()
    }
    const start = (message: OutgoingMessage): void => {
      const at = index++
      unsettled++
      const { topic, payload, ...rest } = message
      const settled = (outcome: PublishOutcome): void => {
        unsettled--
        subscriber.next(outcome)
        void pull()
        finish()
      }
      publish(topic, payload, { ...rest, signal: options.signal }).then(
        (result) => settled({ index: at, message, result }),
        (error: unknown) => settled({ index: at, message, error: error instanceof Error ? error : new Error(String(error)) })
      )
    }
    const pull = async (): Promise<void> => {
      if (pulling) return
      pulling = true
      try {
        while (!exhausted && !stopped && unsettled < concurrency && options.signal?.aborted !== true) {
          const step = await iterator.next()
          if (step.done === true) exhausted = true
          else start(step.value)
        }
        if (options.signal?.aborted === true || stopped) exhausted = true
      } catch (error) {
        exhausted = true
        subscriber.error(error)
        return
      } finally {
        pulling = false
      }
      finish()
    }
    void pull()
    return () => {
      stopped = true
      if (!exhausted) void Promise.resolve(iterator.return?.()).catch(() => undefined)
    }
  })
}
