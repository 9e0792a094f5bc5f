/**
 * Our broker with access control: `servers/ours.ts` plus `withAccessControl` and 20 ACL rules
 * (allow and deny rules, %u / %c substitutions, selectors), every delivery checked for read.
 * Compare it with `ours` to see what the per-delivery read check costs:
 *
 *   node --import tsx benchmarks/broker/run.ts --targets ours --scenarios fanin-q0,fanout-q0 --wildcard 1
 *   node --import tsx benchmarks/broker/run.ts --targets ours --scenarios fanin-q0,fanout-q0 --wildcard 1 \
 *     --ours-script benchmarks/broker/servers/ours-acl.ts
 */
import { MemoryBackend, withAccessControl } from '../../../lib/index.js'
import type { AclRule } from '../../../lib/index.js'
import { serveOurs } from './server-args.js'

const acl: AclRule[] = [{ filter: 'bench/#', access: 'readwrite' }, { filter: 'bench/+/secret/#', access: 'deny' }]
for (let i = 0; acl.length < 20; i++) {
  acl.push(
    { filter: `private/${i}/#`, access: 'deny' },
    { filter: `devices/${i}/%c/#`, access: 'readwrite' },
    { filter: `users/${i}/%u/#`, access: 'read', user: `user${i}` }
  )
}
acl.length = 20

await serveOurs(withAccessControl(new MemoryBackend(), { acl, bruteForce: false }), process.argv.slice(2))
