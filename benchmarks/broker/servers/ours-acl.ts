/**
 * Our broker with access control: `servers/ours.ts` plus `withAccessControl` and 20 ACL rules
 * (allow and deny rules, %u / %c substitutions, selectors), every delivery checked for read.
 * Compare it with `ours` to see what the per-delivery read check costs:
 *
 *   node --import tsx benchmarks/broker/run.ts --targets ours --scenarios fanin-q0,fanout-q0 --wildcard 1
 *   node --import tsx benchmarks/broker/run.ts --targets ours --scenarios fanin-q0,fanout-q0 --wildcard 1 \
 *     --ours-script benchmarks/broker/servers/ours-acl.ts
 */
import { Broker, MemoryBackend, withAccessControl } from '../../../lib/index.js'
import type { AclRule } from '../../../lib/index.js'
import { serverArgs } from './server-args.js'

const acl: AclRule[] = [{ filter: 'bench/#', access: 'readwrite' }, { filter: 'bench/+/secret/#', access: 'deny' }]
for (let i = 0; acl.length < 20; i++) {
  acl.push(
    { filter: `private/${i}/#`, access: 'deny' },
    { filter: `devices/${i}/%c/#`, access: 'readwrite' },
    { filter: `users/${i}/%u/#`, access: 'read', user: `user${i}` }
  )
}
acl.length = 20

const { port, transport } = serverArgs(process.argv.slice(2))
const backend = withAccessControl(new MemoryBackend(), { acl, bruteForce: false })
const broker = new Broker({ backend, maxOutgoingQueue: 1_000_000 })
if (transport === 'ws') await broker.listen({ transport: 'ws', host: '127.0.0.1', port, path: '/mqtt' })
else await broker.listen({ transport: 'tcp', host: '127.0.0.1', port })
process.stdout.write(`listening ${port}\n`)
const stop = (): void => {
  const hard = setTimeout(() => process.exit(0), 2000)
  broker.close().then(() => { clearTimeout(hard); process.exit(0) }, () => process.exit(1))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
