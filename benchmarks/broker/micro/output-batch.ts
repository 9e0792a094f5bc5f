/**
 * Micro-benchmark: OutputBatch with 100 connections, PER packets each per batch (QoS 0 and 1 variants
 * alternating), in CPU time per packet (median and min of 9 rounds). ROOT is a checkout:
 *   node --import tsx benchmarks/broker/micro/output-batch.ts ROOT [PER]
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const root = resolve(process.argv[2] ?? '.')
const from = (path: string): string => pathToFileURL(resolve(root, path)).href
const { OutputBatch } = await import(from('lib/util/output-batch.ts'))
const { PublishTemplate } = await import(from('lib/packet/publish-template.ts'))
const t = new PublishTemplate({ topic: 'bench/topic', payload: Buffer.alloc(64) }, 4)
const v0 = t.variant(0, false, false), v1 = t.variant(1, false, false)
const batches = Array.from({ length: 100 }, () => new OutputBatch())
const per = Number(process.argv[3] ?? 8)
function round(): void {
  for (let k = 0; k < 200; k++) {
    for (const b of batches) for (let i = 0; i < per; i++) b.pushPublish(i & 1 ? v1 : v0, i + 1)
    for (const b of batches) b.take()
  }
}
round()
const rounds: number[] = []
for (let r = 0; r < 9; r++) { const t0 = process.cpuUsage(); round(); const u = process.cpuUsage(t0); rounds.push((u.user + u.system) * 1000 / (200 * 100 * per)) }
rounds.sort((a, b) => a - b)
console.log(root, `per=${per}`, 'ns per packet, median', rounds[4]!.toFixed(1), 'min', rounds[0]!.toFixed(1))
