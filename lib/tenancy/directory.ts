import type { Awaitable } from '../util/awaitable.js'
import { isValidTenant } from './tenant-id.js'

/**
 * Where the tenants of a cluster are recorded, so that every broker process can list them
 * (`TenantBackend({ shared: true, directory })`): one entry per tenant that had a session set up,
 * with a generation bumped by every new record. The generation lets a lister forget a tenant it
 * found without sessions only if nothing recorded it in the meantime (see `forget`): a session set
 * up concurrently with the check is never lost from the list.
 */
export interface TenantDirectory {
  /** Records `tenant` (undefined: the default tenant) after one of its sessions was set up; bumps its generation. */
  record(tenant: string | undefined): Awaitable<void>
  /** Every recorded tenant with its generation (undefined: the default tenant). */
  entries(): Awaitable<Map<string | undefined, string>>
  /** Forgets `tenant` if its generation is still `generation`; true when forgotten. */
  forget(tenant: string | undefined, generation: string): Awaitable<boolean>
  /** Releases what the directory holds (called by `TenantBackend.close`). */
  close?(): Awaitable<void>
}

/** The field of a tenant in a directory: its id, or '' for the default tenant (never a valid id). */
export function tenantField(tenant: string | undefined): string {
  return tenant ?? ''
}

/** The tenant of a directory field; null for a field that is no tenant (garbage written by someone else). */
export function fieldTenant(field: string): string | undefined | null {
  if (field === '') return undefined
  return isValidTenant(field) ? field : null
}

/**
 * A `TenantDirectory` in this process's memory: for several `TenantBackend`s of one process (and
 * for specs). Processes sharing a Redis use `RedisTenantDirectory`.
 */
export class MemoryTenantDirectory implements TenantDirectory {
  readonly #generations = new Map<string, number>()

  record(tenant: string | undefined): void {
    const field = tenantField(tenant)
    this.#generations.set(field, (this.#generations.get(field) ?? 0) + 1)
  }

  entries(): Map<string | undefined, string> {
    const out = new Map<string | undefined, string>()
    for (const [field, generation] of this.#generations) {
      const tenant = fieldTenant(field)
      if (tenant !== null) out.set(tenant, String(generation))
    }
    return out
  }

  forget(tenant: string | undefined, generation: string): boolean {
    const field = tenantField(tenant)
    if (String(this.#generations.get(field)) !== generation) return false
    return this.#generations.delete(field)
  }
}
