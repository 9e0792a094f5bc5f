import { expect } from 'chai'
import type { Subscription as RxSubscription } from 'rxjs'
import type { BrokerEvent } from '../../lib/broker/events.js'
import type { Packet } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { ended, pingPong } from '../helpers/events.js'

describe('broker – observables', () => {
  const teardown = useTeardown()

  it('events$ reports connected, subscribed, published, delivered, unsubscribed and disconnected', async () => {
    const broker = makeBroker(teardown)
    const events: BrokerEvent[] = []
    const watching = broker.events$.subscribe((event) => events.push(event))
    teardown.defer(() => watching.unsubscribe())
    const sub = await connected(broker, { clientId: 'sub' })
    await subscribe(sub, [{ topicFilter: 't', qos: 0 }])
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('t', 'x'))
    await sub.next()
    sub.send({ type: 'unsubscribe', packetId: 2, topicFilters: ['t'] })
    await sub.next()
    const done = ended(broker, 'sub')
    sub.send({ type: 'disconnect' })
    await sub.waitClosed()
    await done
    const types = events.map((e) => e.type)
    expect(types).to.include.members([
      'client.connected',
      'subscribed',
      'published',
      'delivered',
      'unsubscribed',
      'client.disconnected',
      'client.ended'
    ])
    expect(types.indexOf('client.ended')).to.be.greaterThan(types.indexOf('client.disconnected'))
    const connectedEvent = events.find((e) => e.type === 'client.connected')
    expect(connectedEvent).to.deep.include({ sessionPresent: false })
    const disconnected = events.find((e) => e.type === 'client.disconnected')
    expect(disconnected && disconnected.type === 'client.disconnected' && disconnected.reason).to.equal('disconnect')
    const published = events.find((e) => e.type === 'published')
    expect(published && published.type === 'published' && published.message.topic).to.equal('t')
  })

  it('events$ reports dropped deliveries with the reason', async () => {
    const broker = makeBroker(teardown)
    const dropped: BrokerEvent[] = []
    const watching = broker.events$.subscribe((event) => {
      if (event.type === 'dropped') dropped.push(event)
    })
    teardown.defer(() => watching.unsubscribe())
    const peer = await connected(broker, { clientId: 'small', protocolLevel: 5, properties: { maximumPacketSize: 20 } })
    await subscribe(peer, [{ topicFilter: 'big', qos: 0 }])
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('big', 'x'.repeat(50)))
    await pingPong(pub)
    await pingPong(peer, 'the packet too large for the client is not sent')
    expect(dropped).to.have.length(1)
    expect(dropped[0]).to.deep.include({ type: 'dropped', reason: 'too-large' })
  })

  it('client.ended comes once per connection with a session, after its will and its terminate, and before close() resolves', async () => {
    const broker = makeBroker(teardown)
    const seen: string[] = []
    const watching = broker.events$.subscribe((e) => {
      if (e.type === 'client.disconnected' || e.type === 'client.ended') seen.push(`${e.type} ${e.client.clientId}`)
      if (e.type === 'published' && e.client === undefined) seen.push(`will ${e.message.topic}`)
    })
    teardown.defer(() => watching.unsubscribe())
    const backend = broker.backend
    const terminate = backend.terminate.bind(backend)
    backend.terminate = (client, session) => {
      seen.push(`terminate ${client.clientId}`)
      return terminate(client, session)
    }
    const lost = await connected(broker, { clientId: 'lost', will: { topic: 'gone', payload: Buffer.from('x'), qos: 0, retain: false } })
    const done = ended(broker, 'lost')
    lost.destroy()
    await done
    expect(seen).to.deep.equal(['client.disconnected lost', 'will gone', 'terminate lost', 'client.ended lost'])
    // Taken over: no terminate, still ended.
    seen.length = 0
    const first = await connected(broker, { clientId: 'same', clean: false })
    const takenOver = ended(broker, 'same')
    await connected(broker, { clientId: 'same', clean: false })
    await first.waitClosed()
    await takenOver
    expect(seen).to.deep.equal(['client.disconnected same', 'client.ended same'])
    // close(): every connection's teardown is over before it resolves.
    seen.length = 0
    await broker.close()
    expect(seen).to.deep.equal(['client.disconnected same', 'terminate same', 'client.ended same'])
  })

  it('per-client incoming$ and outgoing$ carry the packets, and complete on close', async () => {
    const broker = makeBroker(teardown)
    const incoming: Packet[] = []
    const outgoing: Packet[] = []
    let completed = 0
    const subscriptions: RxSubscription[] = []
    const watching = broker.events$.subscribe((event) => {
      if (event.type !== 'client.connected') return
      subscriptions.push(event.client.incoming$.subscribe({ next: (p) => incoming.push(p), complete: () => completed++ }))
      subscriptions.push(event.client.outgoing$.subscribe({ next: (p) => outgoing.push(p), complete: () => completed++ }))
    })
    teardown.defer(() => watching.unsubscribe())
    const peer = await connected(broker, { clientId: 'watched' })
    await subscribe(peer, [{ topicFilter: 'w', qos: 1 }])
    peer.send(publish('w', 'self', 1, 3))
    const delivered = await peer.next()
    const ack = await peer.next()
    expect([delivered.type, ack.type].sort()).to.deep.equal(['puback', 'publish'])
    peer.send({ type: 'disconnect' })
    await peer.waitClosed()
    expect(incoming.map((p) => p.type)).to.deep.equal(['subscribe', 'publish', 'disconnect'])
    expect(outgoing.map((p) => p.type)).to.include.members(['suback', 'publish', 'puback'])
    const out = outgoing.find((p) => p.type === 'publish')
    expect(out).to.deep.include({ topic: 'w', qos: 1 })
    expect(completed).to.equal(2)
  })

  it('close() disconnects MQTT 5 clients with 0x8B, closes the backend and completes events$', async () => {
    const broker = makeBroker(teardown)
    let complete = false
    broker.events$.subscribe({ complete: () => (complete = true) })
    const peer = await connected(broker, { protocolLevel: 5 })
    await broker.close()
    expect(await peer.next()).to.deep.equal({ type: 'disconnect', reasonCode: 0x8b })
    await peer.waitClosed()
    expect(complete).to.equal(true)
  })
})
