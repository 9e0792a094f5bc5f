/**
 * Multi-tenancy: tenant ids and the resolvers that find the tenant of a connection at CONNECT.
 * See docs/tenancy.md; `TenantBackend` (lib/backend/tenant-backend.ts) routes by the result, and
 * lists the tenants of a cluster from a `TenantDirectory` (`RedisTenantDirectory`) through a
 * `TenantListing`, as `KeyvBackend` does for its own tenants.
 */
export { TENANT_ID_PATTERN, isValidTenant, validateTenant } from './tenant-id.js'
export { TenantError, byClientIdPrefix, byFunction, byListener, byUsernameDomain, resolveTenant } from './resolvers.js'
export { MemoryTenantDirectory } from './directory.js'
export type { TenantDirectory } from './directory.js'
export { RedisTenantDirectory } from './redis-directory.js'
export { TenantListing } from './listing.js'
export type { RedisTenantDirectoryOptions } from './redis-directory.js'
export type {
  ClientIdPrefixOptions,
  ListenerOptions,
  TenantRequest,
  TenantResolution,
  TenantResolver,
  UsernameDomainOptions
} from './resolvers.js'
