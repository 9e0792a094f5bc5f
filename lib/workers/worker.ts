/**
 * The worker side of the multi-core mode (see supervisor.ts): which slot this process is, its node
 * id in the cluster, reporting its listeners to the primary, and stopping when the primary is gone.
 */
import cluster from 'node:cluster'
import type { BrokerConfig } from '../config/schema.js'
import type { ListeningMessage } from './supervisor.js'
import { WORKER_ENV } from './supervisor.js'

/** This process's worker slot (0 … N-1), or undefined when it is no worker of `mqtt-broker --workers`. */
export function workerSlot(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (!cluster.isWorker) return undefined
  const text = env[WORKER_ENV]
  if (text === undefined || !/^\d+$/.test(text)) return undefined
  return Number(text)
}

/**
 * Why `config` cannot run `workers` processes, or undefined: more than one worker needs the redis
 * backend, through which the workers share sessions and messages (with the memory backend each
 * worker would be a broker of its own, and clients on different workers would not see each other).
 */
export function workersProblem(config: BrokerConfig): string | undefined {
  const workers = config.workers ?? 1
  if (workers <= 1 || config.backend?.type === 'redis') return undefined
  return (
    `workers: ${workers} needs the redis backend (--redis URL, or backend.type: redis): the workers share ` +
    'sessions, subscriptions and messages through Redis; with the memory backend each worker would be a ' +
    'separate broker. Use workers: 1 (the default) for the memory backend.'
  )
}

/**
 * The configuration a worker runs: a configured node id gets the slot appended (`edge-1` →
 * `edge-1-w0`), since every process of a cluster needs its own; the default id is unique already.
 */
export function workerConfig(config: BrokerConfig, slot: number): BrokerConfig {
  const nodeId = config.backend?.redis?.node_id
  if (nodeId === undefined || config.backend?.redis === undefined) return config
  return { ...config, backend: { ...config.backend, redis: { ...config.backend.redis, node_id: `${nodeId}-w${slot}` } } }
}

/** Tells the primary that every listener is bound, with the lines a single process would print. */
export function reportListening(lines: string[]): void {
  const message: ListeningMessage = { type: 'mqtt-broker:listening', lines }
  // A closed channel (the primary is gone) is handled by `onPrimaryGone`, not by an 'error' event.
  if (process.connected) process.send?.(message)
}

/**
 * Calls `stop` when the primary is gone (its IPC channel closed): a worker must not outlive the
 * process that supervises it.
 */
export function onPrimaryGone(stop: () => void): void {
  // Gone already (it died while this worker started): stop now, the event came before us.
  if (!process.connected) queueMicrotask(stop)
  else process.once('disconnect', stop)
}
