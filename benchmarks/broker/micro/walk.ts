/**
 * Micro-benchmark: MemoryBackend.publish to 100 QoS 0 subscribers whose deliver does nothing, in
 * CPU time per delivery (median and min of 9 rounds of 50,000 messages). ROOT is a checkout, so two
 * versions compare side by side:  node --import tsx benchmarks/broker/micro/walk.ts ROOT
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const root = resolve(process.argv[2] ?? '.')
const from = (path: string): string => pathToFileURL(resolve(root, path)).href
const { MemoryBackend } = await import(from('lib/backend/memory-backend.ts'))
const b = new MemoryBackend()
let delivered = 0
const clients: unknown[] = []
for (let i = 0; i < 100; i++) {
  const c = { clientId: `c${i}`, connected: true, deliver: () => { delivered++; return 'sent' }, close() {} } as never
  b.setup(c, true, 0); b.queueOffline(c, undefined as never); b.subscribe(c, undefined as never, [{ topicFilter: 'bench/t', qos: 0 }])
  clients.push(c)
}
const msg = { topic: 'bench/t', payload: Buffer.alloc(64), qos: 0, retain: false }
for (let i = 0; i < 20000; i++) b.publish(undefined, msg)
const rounds: number[] = []
for (let r = 0; r < 9; r++) {
  const t0 = process.cpuUsage()
  for (let i = 0; i < 50000; i++) b.publish(undefined, msg)
  const u = process.cpuUsage(t0); rounds.push((u.user + u.system) * 1000 / 50000 / 100)
}
if (delivered !== (20000 + 9 * 50000) * 100) throw new Error(`delivered ${delivered}: the walk did not reach every subscriber`)
rounds.sort((a, b) => a - b)
console.log(root, 'ns per delivery, median of 9:', rounds[4]!.toFixed(1), 'min', rounds[0]!.toFixed(1))
