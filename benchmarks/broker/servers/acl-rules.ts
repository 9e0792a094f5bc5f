import type { AclRule } from '../../../lib/index.js'

/**
 * The 20 ACL rules of the access-control benchmark rows (servers/ours-acl.ts,
 * benchmarks/auth/acl-cost.ts): a broad allow, deny rules (one inside the allowed area), `%c`
 * rules (a distinct rule set per connection) and `%u` rules with user selectors.
 */
export function benchmarkAcl (): AclRule[] {
  const acl: AclRule[] = [{ filter: 'bench/#', access: 'readwrite' }, { filter: 'bench/+/secret/#', access: 'deny' }]
  for (let i = 0; acl.length < 20; i++) {
    acl.push(
      { filter: `private/${i}/#`, access: 'deny' },
      { filter: `devices/${i}/%c/#`, access: 'readwrite' },
      { filter: `users/${i}/%u/#`, access: 'read', user: `user${i}` }
    )
  }
  acl.length = 20
  return acl
}
