import type { Awaitable } from '../util/awaitable.js'
import type { TenantDirectory } from './directory.js'

/** Tenants checked at once by a listing (each check asks the backend for the tenant's counts). */
const CHECKS_AT_ONCE = 16

/**
 * The tenants of a cluster from a `TenantDirectory`, kept by a backend that serves tenants
 * (`TenantBackend` with a `directory`, `KeyvBackend`):
 *
 * - `recorded(tenant, setup)`: the result of a session setup, once its tenant is recorded — after
 *   the session exists, never before (see `TenantDirectory.forget`); one record per setup. A record
 *   that fails never fails the setup: the tenant is kept, listed by this process, and recorded again
 *   aside (one retry at a time, stopping at the first failure), so that a connection waits for its
 *   own record only.
 * - `list()`: every recorded tenant that still has a session somewhere (`hasSessions`); one
 *   without is forgotten unless a session recorded it meanwhile (the generation check). Rejects
 *   when the directory cannot be read.
 *
 * Nothing here is on the publish path.
 */
export class TenantListing {
  readonly directory: TenantDirectory
  readonly #hasSessions: (tenant: string | undefined) => Awaitable<boolean>
  /** Tenants whose record failed (Redis away): recorded again at the next chance. */
  readonly #unrecorded = new Set<string | undefined>()
  /** The retry of `#unrecorded` in progress. */
  #retrying: Promise<void> | undefined = undefined

  /**
   * @param hasSessions false only when the tenant is known to have no session in the cluster (a
   *   tenant that cannot be checked must answer true: it stays listed).
   */
  constructor(directory: TenantDirectory, hasSessions: (tenant: string | undefined) => Awaitable<boolean>) {
    this.directory = directory
    this.#hasSessions = hasSessions
  }

  /** `setup`'s result once `tenant` is recorded (a failed record is retried aside, see the class). */
  async recorded<T>(tenant: string | undefined, setup: Awaitable<T>): Promise<T> {
    const result = await setup
    // Earlier failures are retried aside: a connection waits for its own record only.
    if (this.#unrecorded.size > 0) void this.#recordAgain()
    await this.#record(tenant)
    return result
  }

  /** Every recorded tenant with a session somewhere: the default tenant first, then by id. */
  async list(): Promise<(string | undefined)[]> {
    const directory = this.directory
    await this.#recordAgain()
    const entries = [...(await directory.entries())]
    const listed = new Set<string | undefined>(this.#unrecorded)
    for (let i = 0; i < entries.length; i += CHECKS_AT_ONCE) {
      await Promise.all(
        entries.slice(i, i + CHECKS_AT_ONCE).map(async ([tenant, generation]) => {
          if (!(await this.#checked(tenant))) {
            // Forgotten only if nothing recorded the tenant since `entries` read its generation.
            if (await directory.forget(tenant, generation)) return
          }
          listed.add(tenant)
        })
      )
    }
    // `sort` would put undefined last without asking.
    const named = [...listed].filter((t): t is string => t !== undefined).sort()
    return listed.has(undefined) ? [undefined, ...named] : named
  }

  /** `hasSessions`, true when it failed. */
  async #checked(tenant: string | undefined): Promise<boolean> {
    try {
      return await this.#hasSessions(tenant)
    } catch {
      return true
    }
  }

  /** Records the tenant of a session just set up; on failure keeps it to record at the next chance. */
  async #record(tenant: string | undefined): Promise<boolean> {
    try {
      await this.directory.record(tenant)
      this.#unrecorded.delete(tenant)
      return true
    } catch {
      this.#unrecorded.add(tenant)
      return false
    }
  }

  /** Records the tenants whose record failed, one retry at a time, stopping at the first failure. */
  #recordAgain(): Promise<void> {
    this.#retrying ??= (async () => {
      for (const tenant of [...this.#unrecorded]) if (!(await this.#record(tenant))) return
    })().finally(() => {
      this.#retrying = undefined
    })
    return this.#retrying
  }
}
