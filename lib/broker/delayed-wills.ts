import type { StoredWill } from '../session/session.js'

/** A will waiting for its MQTT 5 Will Delay Interval. */
export interface DelayedWill {
  readonly tenant: string | undefined
  readonly clientId: string
  readonly will: StoredWill
  /** When it is due, ms since the epoch. */
  readonly dueAt: number
}

/**
 * The wills waiting for their MQTT 5 Will Delay Interval on this process, by tenant and client id
 * (client ids are unique per tenant). `fire` publishes one; the broker's shared timer calls `due`.
 */
export class DelayedWills {
  private readonly wills = new Map<string, DelayedWill>()

  constructor(private readonly fire: (delayed: DelayedWill) => void) {}

  get size(): number {
    return this.wills.size
  }

  /** Publish `will` of `clientId` at `dueAt` unless `settle` cancels it first. */
  delay(tenant: string | undefined, clientId: string, will: StoredWill, dueAt: number): void {
    this.wills.set(willKey(tenant, clientId), { tenant, clientId, will, dueAt })
  }

  /** A new connection of `clientId` set up its session: cancel its delayed will, or publish it now if `clean`. */
  settle(tenant: string | undefined, clientId: string, clean: boolean): void {
    const key = willKey(tenant, clientId)
    const delayed = this.wills.get(key)
    if (delayed === undefined) return
    this.wills.delete(key)
    if (clean) this.fire(delayed)
  }

  /** Publish the wills due at `now`. */
  due(now: number): void {
    if (this.wills.size === 0) return
    for (const [key, delayed] of this.wills) {
      if (delayed.dueAt > now) continue
      this.wills.delete(key)
      this.fire(delayed)
    }
  }

  /** Publish every waiting will now (the sessions end with the broker). */
  fireAll(): void {
    for (const delayed of [...this.wills.values()]) this.fire(delayed)
    this.wills.clear()
  }
}

/** The key of a delayed will: client ids are unique per tenant. U+0000 cannot occur in either. */
function willKey(tenant: string | undefined, clientId: string): string {
  return tenant === undefined ? clientId : `${tenant}\u0000${clientId}`
}
