import type { Broker } from '../broker/broker.js'

/** One readiness check's outcome. */
export interface CheckResult {
  ok: boolean
  /** What was seen, for the operator. */
  detail: string
}

/** The answer of `/readyz`. */
export interface Readiness {
  ready: boolean
  checks: { broker: CheckResult; listeners: CheckResult; backend: CheckResult }
}

/**
 * Whether the broker can take traffic: not closing, at least `minListeners` listeners bound, and
 * the backend reachable. A backend that reports availability (an `available` boolean, as
 * `KeyvBackend` and `TenantBackend` have) is unready while it says false; one without is assumed
 * reachable (it lives in this process).
 */
export function readiness(broker: Broker, minListeners: number): Readiness {
  const closed = broker.closed
  const bound = broker.listenerAddresses
  const available = (broker.backend as { available?: unknown }).available
  const checks = {
    broker: { ok: !closed, detail: closed ? 'closing' : 'running' },
    listeners: {
      ok: bound.length >= minListeners,
      detail: `${bound.length} bound (${bound.map((a) => (a.kind === 'unix' ? `unix://${a.socketPath ?? a.host}` : `${a.kind}://${a.host}:${a.port}${a.path ?? ''}`)).join(', ') || 'none'}), ${minListeners} required`
    },
    backend: {
      ok: available !== false,
      detail: available === undefined ? 'in process' : available === true ? 'reachable' : 'unreachable'
    }
  }
  return { ready: checks.broker.ok && checks.listeners.ok && checks.backend.ok, checks }
}
