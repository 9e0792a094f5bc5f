/**
 * Where a broker's CPU went, from V8 CPU profiles (`--cpu-prof`): per profile, the share of sampled
 * time spent in garbage collection, in observation (any sample whose stack holds a frame of the
 * HTTP listener, the metrics, prom-client, node:http or fetch/undici: inclusive, so JSON.stringify
 * under an API handler counts), idle, and the rest. Profiles of brokers run with the same load
 * compare what observing them takes off, independently of how busy the machine was.
 *
 *   node --import tsx benchmarks/broker/profile-share.ts DIR/*.cpuprofile
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** Frames that belong to observing the broker (the HTTP listener and its clients). */
const OBSERVATION = /\/lib\/http\/|\/lib\/metrics\/|prom-client|undici|node:_http_|node:http|node:https|ours-observed|observed-ab/

for (const file of process.argv.slice(2)) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  // Per node: observed (some frame on its stack is observation code) or not, memoised.
  const observed = new Map<number, boolean>()
  const isObserved = (id: number): boolean => {
    const known = observed.get(id)
    if (known !== undefined) return known
    const node = byId.get(id)
    const up = parent.get(id)
    const value = node !== undefined && (OBSERVATION.test(node.callFrame.url) || (up !== undefined && isObserved(up)))
    observed.set(id, value)
    return value
  }
  const time = { total: 0, gc: 0, idle: 0, observation: 0, program: 0 }
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number
    const dt = profile.timeDeltas[i] ?? 0
    const name = byId.get(id)?.callFrame.functionName
    time.total += dt
    if (name === '(idle)') time.idle += dt
    else if (name === '(garbage collector)') time.gc += dt
    else if (name === '(program)') time.program += dt
    else if (isObserved(id)) time.observation += dt
  }
  const busy = time.total - time.idle
  const pct = (x: number): string => `${((x / busy) * 100).toFixed(2)} %`
  process.stdout.write(
    `${basename(file)}: busy ${(busy / 1e6).toFixed(2)} s; of it GC ${pct(time.gc)}, observation ${pct(time.observation)}, (program) ${pct(time.program)}\n`
  )
}
