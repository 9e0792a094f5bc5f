/**
 * One side of a client benchmark run, in its own process: `pub` publishes N messages, `sub`
 * receives them; both print one JSON line with timings, CPU and peak RSS.
 *
 *   node --import tsx benchmarks/client/worker.ts <ours|mqttjs> <pub|sub> <qos> <count> <url> <topic> [window]
 *
 * The payload is 64 bytes whose first 8 hold the sequence number: the subscriber counts distinct
 * sequence numbers (loss and duplicates make a run invalid at QoS 1/2).
 */
import mqtt from 'mqtt'
import { Client } from '../../lib/client/client.js'
import type { QoS } from '../../lib/packet/index.js'

const [lib, role, qosArg, countArg, url, topic, windowArg] = process.argv.slice(2) as [string, string, string, string, string, string, string | undefined]
const qos = Number(qosArg) as QoS
const count = Number(countArg)
const window = Number(windowArg ?? (qos === 0 ? 1000 : 64))
const now = (): number => performance.timeOrigin + performance.now()

/** CPU used before the measured work (process start, module loading, connect) is not counted. */
let baseline = process.cpuUsage()
function startCpu(): void {
  baseline = process.cpuUsage()
}

function report(extra: Record<string, unknown>): void {
  const cpu = process.cpuUsage(baseline)
  process.stdout.write(JSON.stringify({ lib, role, qos, count, cpuUs: cpu.user + cpu.system, maxRssKb: process.resourceUsage().maxRSS, ...extra }) + '\n')
}

function payload(seq: number): Buffer {
  const b = Buffer.alloc(64, 0x61)
  b.writeDoubleBE(seq, 0)
  return b
}

/** Run `send(i)` for i in 0..count-1 with at most `window` outstanding. */
async function pump(send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  let failed: unknown
  await new Promise<void>((resolve, reject) => {
    let inFlight = 0
    const more = (): void => {
      while (inFlight < window && next < count) {
        inFlight++
        send(next++).then(
          () => {
            inFlight--
            if (next === count && inFlight === 0) resolve()
            else more()
          },
          (error: unknown) => {
            failed = error
            reject(error)
          }
        )
      }
    }
    more()
  })
  if (failed !== undefined) throw failed
}

async function main(): Promise<void> {
  const clientId = `${lib}-${role}-${process.pid}`
  if (lib === 'ours') {
    const client = await Client.connect(url, { clientId, protocolVersion: 4, keepalive: 60, maxInflight: 65_535 })
    if (role === 'pub') {
      startCpu()
      const start = now()
      await pump((i) => client.publish(topic, payload(i), { qos }))
      const end = now()
      await client.end()
      report({ start, end })
    } else {
      const seen = new Uint8Array(count)
      let distinct = 0
      let dup = 0
      let first = 0
      let last = 0
      let finish: () => void = () => undefined
      const done = new Promise<void>((resolve) => (finish = resolve))
      client.messages$.subscribe((m) => {
        const seq = m.payload.readDoubleBE(0)
        if (first === 0) first = now()
        if (seen[seq] === 1) dup++
        else {
          seen[seq] = 1
          distinct++
        }
        if (distinct === count) {
          last = now()
          finish()
        }
      })
      await client.subscribe({ topicFilter: topic, qos })
      startCpu()
      process.stdout.write('ready\n')
      await Promise.race([done, idle(() => distinct)])
      await client.end()
      report({ first, last: last || now(), received: distinct, duplicates: dup })
    }
    return
  }
  const client = await mqtt.connectAsync(url, { clientId, protocolVersion: 4, keepalive: 60, reconnectPeriod: 0 })
  if (role === 'pub') {
    const start = now()
    await pump((i) => client.publishAsync(topic, payload(i), { qos }))
    const end = now()
    await client.endAsync()
    report({ start, end })
  } else {
    const seen = new Uint8Array(count)
    let distinct = 0
    let dup = 0
    let first = 0
    let last = 0
    let finish: () => void = () => undefined
    const done = new Promise<void>((resolve) => (finish = resolve))
    client.on('message', (_t, p) => {
      const seq = p.readDoubleBE(0)
      if (first === 0) first = now()
      if (seen[seq] === 1) dup++
      else {
        seen[seq] = 1
        distinct++
      }
      if (distinct === count) {
        last = now()
        finish()
      }
    })
    await client.subscribeAsync(topic, { qos })
    startCpu()
    process.stdout.write('ready\n')
    await Promise.race([done, idle(() => distinct)])
    await client.endAsync()
    report({ first, last: last || now(), received: distinct, duplicates: dup })
  }
}

/**
 * Resolves when no new message arrived for 3 s after the first one, or none at all within 60 s
 * (a lossy run ends instead of hanging; a publisher slow to start on a loaded machine is waited for).
 */
function idle(progress: () => number): Promise<void> {
  const started = Date.now()
  return new Promise((resolve) => {
    let seen = -1
    const timer = setInterval(() => {
      const now = progress()
      if ((now === seen && now > 0) || (now === 0 && Date.now() - started > 60_000)) {
        clearInterval(timer)
        resolve()
      }
      seen = now
    }, 3000)
  })
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error).stack ?? error)}\n`)
  process.exit(1)
})
