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
import { benchmarkAcl } from './acl-rules.js'
import { serveOurs } from './server-args.js'

await serveOurs(withAccessControl(new MemoryBackend(), { acl: benchmarkAcl(), bruteForce: false }), process.argv.slice(2))
