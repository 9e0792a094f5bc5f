import { expect } from 'chai'
import { backendConformance } from '../../lib/backend/conformance/index.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { byUsernameDomain } from '../../lib/tenancy/index.js'
import { KvBackend } from '../../examples/kv-backend.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'

// The example backend of examples/ keeps the whole contract: the conformance suite, without the
// shared subscriptions it does not implement.
backendConformance('KvBackend (examples/kv-backend.ts)', () => new KvBackend({ maxQueuedMessages: 5 }), {
  sharedSubscriptions: false,
  maxQueuedMessages: 5
})

describe('examples/kv-backend.ts under the engine', () => {
  const teardown = useTeardown()
  const broker = (): Broker => teardown.add(new Broker({ backend: new KvBackend(), logger: silentLogger }), (b) => b.close())

  it('Retain Handling 1 with subscriptions kept the backend\'s own way (not in the session object)', async () => {
    const b = broker()
    const pub = await connected(b, { clientId: 'pub' })
    pub.send(publish('r', 'x', 1, 1, { retain: true }))
    await pub.next()
    const sub = await connected(b, { clientId: 'sub', protocolLevel: 5 })
    await subscribe(sub, [{ topicFilter: 'r', qos: 0, retainHandling: 1 }])
    expect(await sub.next()).to.deep.include({ topic: 'r', retain: true })
    // The filter exists now: Retain Handling 1 sends nothing; the next packet is the later live publish.
    await subscribe(sub, [{ topicFilter: 'r', qos: 0, retainHandling: 1 }], undefined, 2)
    pub.send(publish('r', 'live', 0))
    expect(await sub.next()).to.deep.include({ topic: 'r', retain: false })
  })

  it('a persistent session resumes with its subscriptions, so Retain Handling 1 still sends nothing', async () => {
    const b = broker()
    const pub = await connected(b, { clientId: 'pub' })
    pub.send(publish('r', 'x', 1, 1, { retain: true }))
    await pub.next()
    const first = await connected(b, { clientId: 'sub', protocolLevel: 5, clean: false, properties: { sessionExpiryInterval: 60 } })
    await subscribe(first, [{ topicFilter: 'r', qos: 0, retainHandling: 1 }])
    expect(await first.next()).to.deep.include({ topic: 'r', retain: true })
    first.send({ type: 'disconnect', reasonCode: 0 })
    await first.waitClosed()
    const second = await connected(b, { clientId: 'sub', protocolLevel: 5, clean: false, properties: { sessionExpiryInterval: 60 } })
    await subscribe(second, [{ topicFilter: 'r', qos: 0, retainHandling: 1 }], undefined, 2)
    pub.send(publish('r', 'live', 0))
    expect(await second.next()).to.deep.include({ topic: 'r', payload: Buffer.from('live'), retain: false })
  })

  it('is refused with a tenantResolver: it keeps no tenants apart', () => {
    expect(() => new Broker({ backend: new KvBackend(), tenantResolver: byUsernameDomain(), logger: silentLogger })).to.throw(TypeError, /KvBackend/)
  })
})
