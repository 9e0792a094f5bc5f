/**
 * Worker thread of the latency scenario: one publisher that sends each message in its own write
 * at its own time (evenly spaced, `1000 / rate` ms apart), sleeping between them with
 * `Atomics.wait` (sub-millisecond, no busy loop). Timers in the main thread only tick every 1 ms,
 * which would send 2 messages together at 2,000 msg/s; a broker with Nagle on then holds the
 * second delivery until the subscriber's delayed ACK (up to 40 ms), which measures TCP, not the
 * broker. Sending blocks this thread's event loop, so the publisher ignores anything the broker
 * sends it until the end (QoS 0 only).
 *
 * Protocol with the parent: worker → `{ type: 'ready' }`; parent → `'start'`; worker →
 * `{ type: 'done', sent }` or `{ type: 'error', message }`.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Conn, type ConnTarget } from './conn.js'
import { Publisher, nowMs, type Tally } from './roles.js'
import { fullGc } from './full-gc.js'

/** What the parent passes as `workerData`. */
export interface PacedPublisherData {
  target: ConnTarget
  clientId: string
  topic: string
  payload: number
  rate: number
  count: number
  /**
   * QoS of the messages (default 0). At QoS 1 the acknowledgements wait in the socket until the
   * last message is sent (the thread sleeps between sends): keep `count` below 65,535.
   */
  qos?: 0 | 1
}

/** Messages from the worker. */
export type PacedPublisherMessage = { type: 'ready' } | { type: 'done'; sent: number } | { type: 'error'; message: string }

async function run (d: PacedPublisherData): Promise<void> {
  const port = parentPort!
  const conn = await Conn.open(d.target, d.clientId)
  const tally: Tally = { deliveries: 0, duplicates: 0, foreign: 0, acked: 0, lastDeliveryAt: 0, check () {} }
  const pub = new Publisher(conn, 0, d.topic, d.payload, d.qos ?? 0, d.count, 1, 1, tally)
  fullGc() // before, not during, the timed messages (see full-gc.ts)
  await new Promise<void>((resolve) => {
    port.once('message', () => resolve())
    port.postMessage({ type: 'ready' } satisfies PacedPublisherMessage)
  })
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  const interval = 1000 / d.rate
  const t0 = nowMs()
  for (let i = 0; i < d.count && !conn.closed; i++) {
    const wait = t0 + i * interval - nowMs()
    if (wait > 0.02) Atomics.wait(sleeper, 0, 0, wait)
    pub.publishNow(1) // libuv tries the write at once: it leaves now, not when the loop runs
  }
  await conn.drained()
  port.postMessage({ type: 'done', sent: pub.sent } satisfies PacedPublisherMessage)
  conn.end()
}

run(workerData as PacedPublisherData).catch((err: unknown) => {
  parentPort!.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies PacedPublisherMessage)
})
