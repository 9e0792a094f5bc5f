import type { SetupResult } from '../backend.js'
import { TenantListing } from '../../tenancy/listing.js'
import { RedisTenantDirectory } from '../../tenancy/redis-directory.js'
import { ensureSessionIndex } from './inspect.js'
import { TenantKeys } from './keys.js'
import type { NodeContext } from './node-context.js'

/**
 * The tenants of the cluster for `KeyvBackend.listTenants`: every node records the tenant of each
 * session it sets up in a tenant directory (`RedisTenantDirectory`) in the backend's own key space,
 * the HASH `<prefix>:_:tenants` (tenant id → generation), sent on the backend's command connection.
 * Two clusters on one Redis (two prefixes) do not see each other's tenants.
 *
 * - `setup`: a session of a named tenant is answered once its tenant is recorded, after the session
 *   exists: one HINCRBY per CONNECT. A failed record never fails the connection; it is retried
 *   aside (`TenantListing`). Sessions of the default tenant record nothing: it is always listed.
 *   Nothing is recorded on the publish path.
 * - `list`: the default tenant, then every recorded tenant that still has a stored session (its
 *   session index is not empty); one without is forgotten, unless a session recorded it meanwhile.
 *
 * Internal to `KeyvBackend`.
 */
export class KeyvTenantListing {
  readonly #node: NodeContext
  readonly #listing: TenantListing
  /** The tenants whose session index this process saw complete (shared with the inspection). */
  readonly #indexed: Set<string>

  constructor(node: NodeContext, indexed: Set<string>) {
    this.#node = node
    this.#indexed = indexed
    const directory = new RedisTenantDirectory({
      // A borrowed client: the backend's link (its timeout; refused at once while Redis is away).
      client: { sendCommand: async (args) => await (await node.use()).sendText(args) },
      key: node.nodeKeys.tenants
    })
    // The default tenant is always listed: never checked, never forgotten (a TenantBackend with a
    // directory on the same key records it as '').
    this.#listing = new TenantListing(directory, async (tenant) => tenant === undefined || (await this.#hasSessions(tenant)))
  }

  /** `Backend.setup`'s result, once the tenant of the session is recorded. */
  setup(tenant: string | undefined, set: Promise<SetupResult>): Promise<SetupResult> {
    return tenant === undefined ? set : this.#listing.recorded(tenant, set)
  }

  /** `BackendInspection.listTenants`: the default tenant, then every tenant with a session in the cluster, by id. */
  async list(): Promise<(string | undefined)[]> {
    const listed = await this.#listing.list()
    return [undefined, ...listed.filter((tenant) => tenant !== undefined)]
  }

  /** Whether the tenant has a stored session anywhere: its session index, completed first if need be. */
  async #hasSessions(tenant: string): Promise<boolean> {
    const link = await this.#node.use()
    const keys = new TenantKeys(this.#node.root, tenant)
    if ((await link.send<number>(['ZCARD', keys.sessionIndex])) > 0) return true
    // Sessions stored before the index existed are indexed first (once per tenant and process).
    await ensureSessionIndex(link, keys, this.#indexed)
    return (await link.send<number>(['ZCARD', keys.sessionIndex])) > 0
  }
}
