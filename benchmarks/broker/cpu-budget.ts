/**
 * A CPU budget per process for benchmarks (`multicore.ts --cpu-cap F`): each capped process gets a
 * cgroup of its own whose CFS quota is F CPUs (cgroup v2 `cpu.max`, or cgroup v1 `cpu.cfs_quota_us`
 * under /sys/fs/cgroup/cpu). A process with a budget of its own stands for a process with a core
 * of its own on a larger host: on a small shared machine, N capped processes show how throughput
 * grows with N as long as the machine has CPU left beyond the N budgets (the benchmark reports it).
 *
 * Needs root and a writable cgroup hierarchy with the cpu controller; `cpuBudgets()` says why not
 * otherwise. Every cgroup is made under one directory per benchmark run and removed at the end.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const PERIOD_US = 100_000

/** The cgroups of one benchmark run. */
export interface CpuBudgets {
  /** Puts `pid` (all its threads) in a cgroup of its own limited to `cpus` CPUs. */
  cap(pid: number, cpus: number): void
  /** Removes the run's cgroups (best effort: a cgroup still holding a live process stays). */
  release(): void
  /** Where the cgroups are, for messages. */
  readonly root: string
}

interface Flavour {
  base: string
  quota(dir: string, cpus: number): void
}

function flavour(): Flavour | string {
  // cgroup v2 (unified hierarchy at /sys/fs/cgroup with the cpu controller).
  const v2 = '/sys/fs/cgroup'
  if (existsSync(join(v2, 'cgroup.controllers'))) {
    if (!readFileSync(join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) return 'cgroup v2 without the cpu controller'
    return {
      base: v2,
      quota: (dir, cpus) => writeFileSync(join(dir, 'cpu.max'), `${Math.round(cpus * PERIOD_US)} ${PERIOD_US}`)
    }
  }
  // cgroup v1 with the cpu controller mounted on its own.
  const v1 = '/sys/fs/cgroup/cpu'
  if (existsSync(join(v1, 'cpu.cfs_quota_us'))) {
    return {
      base: v1,
      quota: (dir, cpus) => {
        writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US))
        writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(Math.round(cpus * PERIOD_US)))
      }
    }
  }
  return 'no cgroup cpu controller found (neither /sys/fs/cgroup/cgroup.controllers nor /sys/fs/cgroup/cpu)'
}

/** Cgroups for this run, or the reason they cannot be made (not root, no cpu controller, read-only). */
export function cpuBudgets(tag = `mqtt-bench-${process.pid}`): CpuBudgets | string {
  const f = flavour()
  if (typeof f === 'string') return f
  const root = join(f.base, tag)
  try {
    mkdirSync(root, { recursive: true })
    if (f.base === '/sys/fs/cgroup') writeFileSync(join(root, 'cgroup.subtree_control'), '+cpu')
  } catch (error) {
    return `cannot make a cgroup under ${f.base} (${error instanceof Error ? error.message : String(error)}): run as root on a host with a writable cgroup hierarchy`
  }
  const made: string[] = []
  return {
    root,
    cap(pid, cpus) {
      if (!(cpus > 0)) throw new RangeError(`a CPU budget must be positive, got ${cpus}`)
      const dir = join(root, `p${pid}`)
      mkdirSync(dir, { recursive: true })
      made.push(dir)
      f.quota(dir, cpus)
      writeFileSync(join(dir, 'cgroup.procs'), String(pid))
    },
    release() {
      for (const dir of [...made.reverse(), root]) {
        try {
          // A cgroup with live processes cannot go; an exited process leaves it empty.
          if (readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() === '') rmdirSync(dir)
        } catch { /* gone already, or still busy */ }
      }
    }
  }
}

/** How long a cgroup's processes were held back by their quota so far, in seconds (cpu.stat), if known. */
export function throttledSeconds(dir: string): number | undefined {
  try {
    const stat = readFileSync(join(dir, 'cpu.stat'), 'utf8')
    const v2 = /^throttled_usec (\d+)/m.exec(stat)
    if (v2 !== null) return Number(v2[1]) / 1e6
    const v1 = /^throttled_time (\d+)/m.exec(stat)
    return v1 === null ? undefined : Number(v1[1]) / 1e9
  } catch {
    return undefined
  }
}

/** Cgroup directories of earlier runs left behind (their processes gone): removed. */
export function sweepStale(prefix = 'mqtt-bench-'): void {
  const f = flavour()
  if (typeof f === 'string') return
  for (const name of readdirSync(f.base)) {
    if (!name.startsWith(prefix)) continue
    const root = join(f.base, name)
    try {
      for (const sub of readdirSync(root)) if (sub.startsWith('p')) { try { rmdirSync(join(root, sub)) } catch { /* busy */ } }
      rmdirSync(root)
    } catch { /* busy or gone */ }
  }
}
