/**
 * Readers for /proc/<pid>: CPU time (utime + stime) and resident memory of the broker process.
 * Linux only; every reader returns undefined when the process or the file is gone.
 */
import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
export const CLK_TCK = 100

/** User and system CPU seconds of a process. */
export interface CpuTimes {
  user: number
  sys: number
}

/** CPU seconds used so far by `pid` (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuTimes (pid: number): CpuTimes | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // The command name (field 2) may contain spaces: fields start after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { user: Number(fields[11]) / CLK_TCK, sys: Number(fields[12]) / CLK_TCK }
  } catch {
    return undefined
  }
}

/** Difference `b - a` of two CPU readings (zeros when either is missing). */
export function cpuDelta (a: CpuTimes | undefined, b: CpuTimes | undefined): CpuTimes {
  if (a === undefined || b === undefined) return { user: 0, sys: 0 }
  return { user: round(b.user - a.user), sys: round(b.sys - a.sys) }
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes (pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m === null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}

/** CPU seconds all CPUs spent busy so far (first line of /proc/stat, without idle and iowait). */
export function systemBusySeconds (): number {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)
    return busy / CLK_TCK
  } catch {
    return 0
  }
}
