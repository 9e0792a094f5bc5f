import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { StoreError } from './store.js'
import type { StoreWarning } from './store.js'

/** A lock file whose owner died within this long of creating it may still be writing its pid. */
const FRESH_LOCK_MS = 5000

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Take the lock file `path` for this process: created with O_EXCL and holding our pid. A lock
 * whose pid no longer runs (a killed process) is stale: it is taken over and reported. Throws
 * `StoreError` (`locked`) while another live process, or this one, holds it.
 *
 * Limits (documented): a pid reused by an unrelated process keeps a stale lock "held" until
 * that process ends; two processes taking over one stale lock at the same instant are not
 * told apart. Both need a crashed owner first.
 */
export function acquireLock(path: string, warn: (w: StoreWarning) => void): void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' })
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
    const pid = Number.parseInt(text, 10)
    if (Number.isInteger(pid) && pid > 0) {
      if (alive(pid)) {
        const who = pid === process.pid ? 'this process' : `process ${pid}`
        throw new StoreError('locked', `store: ${path} is held by ${who}`)
      }
    } else if (Date.now() - mtime < FRESH_LOCK_MS) {
      throw new StoreError('locked', `store: ${path} is being taken by another process`)
    }
    warn({
      code: 'stale-lock',
      message: `store: took over the lock of ${Number.isInteger(pid) ? `process ${pid}, which no longer runs` : 'an unknown process'}`,
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

/** Release a lock taken by `acquireLock` (only if it is still ours). */
export function releaseLock(path: string): void {
  try {
    if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) unlinkSync(path)
  } catch {
    // already gone
  }
}
