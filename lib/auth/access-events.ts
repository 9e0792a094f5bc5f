/** The counters and events of an `AccessControl` (access-control.ts). */
import type { BruteForceStats } from './brute-force.js'

/** Counters of an `AccessControl`. */
export interface AccessStats {
  loginsAllowed: number
  loginsDenied: number
  /** CONNECTs refused by a connection rule. */
  connectionsRefused: number
  publishesDenied: number
  subscriptionsDenied: number
  /** Deliveries not made because the receiver may not read the topic. */
  deliveriesDenied: number
  /** Connections closed because their credentials expired. */
  expired: number
  /** Connections closed because their user was removed. */
  removed: number
  reloads: number
  bruteForce: BruteForceStats
}

/** Events of an `AccessControl` (a hot stream; it completes on `close()`). */
export type AccessEvent =
  | { type: 'login'; clientId: string; username: string | undefined; address: string | undefined; by: string }
  | {
      type: 'login-failed'
      clientId: string
      username: string | undefined
      address: string | undefined
      reasonCode: number
      /** Failures from this address within the brute-force window. */
      failures: number
      /** How long this CONNECT was held back (ms). */
      delayedMs: number
    }
  | { type: 'connection-refused'; clientId: string; username: string | undefined; address: string | undefined; rule: number }
  | { type: 'expired'; clientId: string; username: string | undefined }
  | { type: 'reloaded'; generation: number }
  | { type: 'reload-failed'; error: string }
