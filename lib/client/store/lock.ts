import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { StoreError } from './store.js'
import type { StoreWarning } from './store.js'

/** A lock file whose owner died within this long of creating it may still be writing its pid. */
const FRESH_LOCK_MS = 5000

/** Lock files this process holds (absolute paths): a lock with our pid not in here is stale. */
const held = new Set<string>()

/** The start time of process `pid` (clock ticks since boot, Linux), or undefined when unknown. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces) begin with field 3; starttime is 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Whether the process that wrote the lock (`pid`, started at `started` if known) still runs. */
function alive(pid: number, started: string | undefined): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  // The pid runs: the same process only if it started when the lock's owner did (pid reuse).
  const now = started === undefined ? undefined : startTime(pid)
  return now === undefined || now === started
}

/**
 * Take the lock file `path` for this process: created with O_EXCL and holding our pid and start
 * time. A lock whose process no longer runs (killed; or its pid now belongs to another process,
 * or to this one in a new incarnation — a restarted container) is stale: it is taken over and
 * reported. Throws `StoreError` (`locked`) while another live process, or this one, holds it.
 *
 * Limit (documented): two processes taking over one stale lock at the same instant are not told
 * apart (both need a crashed owner first). Without /proc, pid reuse by another process keeps a
 * stale lock until that process ends.
 */
export function acquireLock(path: string, warn: (w: StoreWarning) => void): void {
  const key = resolve(path)
  if (held.has(key)) throw new StoreError('locked', `store: ${path} is held by this process`)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, `${process.pid} ${startTime(process.pid) ?? '-'}\n`, { flag: 'wx' })
      held.add(key)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError('io', `store: cannot create lock ${path}: ${(err as Error).message}`, { cause: err })
      }
    }
    let text: string
    let mtime: number
    try {
      text = readFileSync(path, 'utf8')
      mtime = statSync(path).mtimeMs
    } catch {
      continue // removed meanwhile: try again
    }
    const [pidText, started] = text.trim().split(' ')
    const pid = Number.parseInt(pidText ?? '', 10)
    const valid = Number.isInteger(pid) && pid > 0
    if (valid) {
      if (pid !== process.pid && alive(pid, started === '-' ? undefined : started)) {
        throw new StoreError('locked', `store: ${path} is held by process ${pid}`)
      }
    } else if (Date.now() - mtime < FRESH_LOCK_MS) {
      throw new StoreError('locked', `store: ${path} is being taken by another process`)
    }
    warn({
      code: 'stale-lock',
      message: `store: took over the lock of ${valid ? `process ${pid}, which no longer runs` : 'an unknown process'}`,
      file: path,
    })
    try {
      unlinkSync(path)
    } catch {
      // another process removed it first: the O_EXCL create decides
    }
  }
  throw new StoreError('locked', `store: could not take the lock ${path}`)
}

/** Release a lock taken by `acquireLock` (the file only if it is still ours). */
export function releaseLock(path: string): void {
  const key = resolve(path)
  if (!held.delete(key)) return
  try {
    if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) unlinkSync(path)
  } catch {
    // already gone
  }
}
