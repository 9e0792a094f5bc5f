/**
 * Multi-core mode: one primary process runs N broker processes (workers) with `node:cluster` and
 * does nothing else. The listeners' sockets are shared through the cluster module: the primary
 * accepts the connections and hands them to the workers in turn (round robin; Node 20's `net` has
 * no `reusePort`). The workers share sessions, subscriptions, retained messages and the messages
 * themselves through the Redis backend, so together they are one broker (docs/multicore.md).
 *
 * The primary:
 * - starts `count` workers (each runs the same command, see `WORKER_ENV`), and reports ready
 *   (`onReady` with the first worker's listening lines) once every worker listens;
 * - fails the start (returns the worker's exit code, stopping the others) when a worker exits
 *   before it listens: a bad configuration or an unreachable Redis fails every worker alike;
 * - restarts a worker that exits on its own after the start, after a delay that doubles from
 *   `restartDelay` to 5 s; more than `maxRestarts` restarts of one slot within a minute is a crash
 *   loop: everything stops, exit code 1;
 * - on SIGINT/SIGTERM sends SIGTERM to every worker (each drains its connections, bounded by the
 *   drain time) and returns 0 once all exited with 0, else 1; a second signal, or workers still
 *   running `drainTimeout` + 3 s later, kills them (SIGKILL) and returns 1;
 * - forwards SIGHUP (reload TLS certificates and access-control files) to every worker.
 */
import cluster from 'node:cluster'
import type { Worker } from 'node:cluster'
import type { Logger } from '../broker/logger.js'

/** The environment variable that tells a worker its slot (0 … count-1). */
export const WORKER_ENV = 'MQTT_BROKER_WORKER'

/** The IPC message a worker sends once all its listeners are bound. */
export interface ListeningMessage {
  type: 'mqtt-broker:listening'
  /** Its `mqtt-broker listening on …` (and `HTTP on …`) lines. */
  lines: string[]
}

/** Options of `runSupervisor`. */
export interface SupervisorOptions {
  /** Number of workers (at least 1). */
  count: number
  logger: Logger
  /** The workers' drain time on a stop (ms); the primary waits this plus 3 s. */
  drainTimeout: number
  /** Called once, when every worker listens, with the first worker's lines. */
  onReady: (lines: string[]) => void
  /** First restart delay after a crash (ms, default 100); doubles per crash up to 5 s. */
  restartDelay?: number
  /** Restarts of one slot within 60 s that count as a crash loop (default 5). */
  maxRestarts?: number
}

/** Milliseconds past the drain time after which workers are killed. */
const OVERRUN_GRACE = 3000
const MAX_RESTART_DELAY = 5000
const CRASH_WINDOW = 60_000

/** One worker slot: the worker now running in it and its recent crashes. */
interface Slot {
  index: number
  worker: Worker | undefined
  ready: boolean
  crashes: number[]
  restartTimer: ReturnType<typeof setTimeout> | undefined
}

/**
 * Runs the primary of the multi-core mode until it stops; resolves with the process exit code.
 * Must run in the cluster's primary (`cluster.isPrimary`).
 */
export function runSupervisor(options: SupervisorOptions): Promise<number> {
  const { count, logger, drainTimeout } = options
  const restartDelay = options.restartDelay ?? 100
  const maxRestarts = options.maxRestarts ?? 5
  return new Promise<number>((resolve) => {
    const slots: Slot[] = Array.from({ length: count }, (_, index) => ({ index, worker: undefined, ready: false, crashes: [], restartTimer: undefined }))
    let started = false
    let stopping = false
    let finished = false
    let exitCode = 0
    let overrun: ReturnType<typeof setTimeout> | undefined

    const running = (): Worker[] => slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]))
    const finish = (code: number): void => {
      if (finished) return
      finished = true
      if (overrun !== undefined) clearTimeout(overrun)
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      process.off('SIGHUP', onHup)
      resolve(code)
    }
    const killAll = (): void => {
      for (const worker of running()) worker.process.kill('SIGKILL')
    }
    const stop = (reason: string, code: number): void => {
      if (stopping) {
        logger.warn('second stop: killing the workers', { reason })
        killAll()
        exitCode = 1
        return
      }
      stopping = true
      exitCode = Math.max(exitCode, code)
      logger.info('stopping the workers', { reason, workers: running().length })
      for (const slot of slots) if (slot.restartTimer !== undefined) clearTimeout(slot.restartTimer)
      if (running().length === 0) {
        finish(exitCode)
        return
      }
      for (const worker of running()) worker.process.kill('SIGTERM')
      overrun = setTimeout(() => {
        logger.error('workers did not stop within the drain time: killing them', { drainTimeout })
        exitCode = 1
        killAll()
      }, drainTimeout + OVERRUN_GRACE)
    }
    const onInt = (): void => stop('SIGINT', 0)
    const onTerm = (): void => stop('SIGTERM', 0)
    const onHup = (): void => {
      logger.info('SIGHUP: passed on to the workers', { workers: running().length })
      for (const worker of running()) worker.process.kill('SIGHUP')
    }
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    process.on('SIGHUP', onHup)

    const fork = (slot: Slot): void => {
      slot.restartTimer = undefined
      slot.ready = false
      const worker = cluster.fork({ [WORKER_ENV]: String(slot.index) })
      slot.worker = worker
      worker.on('message', (message: unknown) => {
        const m = message as Partial<ListeningMessage> | null
        if (m?.type !== 'mqtt-broker:listening' || !Array.isArray(m.lines)) return
        slot.ready = true
        if (started) {
          logger.info('worker listening again', { worker: slot.index, pid: worker.process.pid })
          return
        }
        if (slots.every((s) => s.ready)) {
          started = true
          logger.info('workers listening', { workers: count, pids: slots.map((s) => s.worker?.process.pid).join(',') })
          options.onReady(m.lines)
        }
      })
      worker.on('exit', (code, signal) => {
        if (slot.worker === worker) slot.worker = undefined
        const status = code ?? (signal === null ? 1 : 128)
        if (stopping) {
          if (status !== 0) exitCode = 1
          if (running().length === 0) finish(exitCode)
          return
        }
        if (!started) {
          // A worker that cannot start (configuration, port, Redis): the others would fail alike.
          logger.error('a worker failed to start: stopping', { worker: slot.index, code, signal })
          stop('a worker failed to start', status === 0 ? 1 : status)
          return
        }
        const now = Date.now()
        slot.crashes = slot.crashes.filter((at) => at > now - CRASH_WINDOW)
        slot.crashes.push(now)
        if (slot.crashes.length > maxRestarts) {
          logger.error('a worker keeps crashing: stopping', { worker: slot.index, crashes: slot.crashes.length, code, signal })
          stop('crash loop', 1)
          return
        }
        const delay = Math.min(restartDelay * 2 ** (slot.crashes.length - 1), MAX_RESTART_DELAY)
        logger.error('a worker exited: restarting it', { worker: slot.index, pid: worker.process.pid, code, signal, delay })
        slot.restartTimer = setTimeout(() => fork(slot), delay)
      })
    }
    for (const slot of slots) fork(slot)
  })
}
