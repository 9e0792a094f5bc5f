/**
 * Tenant ids: lower-case letters, digits, `_` and `-`, 1..63 characters, starting with a letter or
 * a digit. The same rule everywhere (resolvers, `TenantBackend`, the Redis key schema of
 * `KeyvBackend`): no `:`, glob characters (`* ? [ ] \`), braces, `@` or `/` can reach a key name or
 * a topic, so one tenant can never name (or SCAN-match) another tenant's data.
 */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/

/** True if `tenant` is a valid tenant id (`TENANT_ID_PATTERN`). */
export function isValidTenant(tenant: string): boolean {
  return TENANT_ID_PATTERN.test(tenant)
}

/** Returns `tenant` if it is a valid tenant id; throws a TypeError otherwise. */
export function validateTenant(tenant: string): string {
  if (!TENANT_ID_PATTERN.test(tenant)) {
    throw new TypeError(`invalid tenant id ${JSON.stringify(tenant)}: expected ${TENANT_ID_PATTERN.source}`)
  }
  return tenant
}
