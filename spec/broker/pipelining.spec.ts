import { expect } from 'chai'
import type { ClientHandle } from '../../lib/backend/backend.js'
import { PIPELINE_DEPTH } from '../../lib/broker/client.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { Packet, PublishPacket } from '../../lib/packet/types.js'
import type { Message, Session, StoredSubscription } from '../../lib/session/session.js'
import type { SubscribeResult } from '../../lib/backend/backend.js'
import { AsyncBackend } from '../helpers/async-backend.js'
import { makeBroker } from '../helpers/broker.js'
import type { Peer } from '../helpers/flow.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { turns } from '../helpers/virtual-clock.js'

/** One `publish` call the test settles by hand. */
interface Held {
  topic: string
  payload: string
  settle(): void
}

/**
 * An asynchronous backend whose `publish` routes at once (so deliveries follow the order of the
 * calls) but answers only when the test settles the call: the test decides the order in which
 * the promises settle. It counts the calls in progress.
 */
class GatedBackend extends AsyncBackend {
  readonly held: Held[] = []
  inProgress = 0
  maxInProgress = 0
  /** Payloads whose call rejects when settled. */
  readonly failing = new Set<string>()
  /** Settle each call after a random delay of up to this many ms instead of holding it. */
  randomDelay: number | undefined = undefined
  /** SUBSCRIBE calls seen, by the topic filters they carried. */
  readonly subscribed: string[] = []

  override publish(client: ClientHandle | undefined, message: Message): Promise<number | undefined> {
    const count = this.memory.publish(client, message)
    const payload = message.payload.toString()
    this.inProgress++
    this.maxInProgress = Math.max(this.maxInProgress, this.inProgress)
    return new Promise((resolve, reject) => {
      const settle = (): void => {
        this.inProgress--
        if (this.failing.has(payload)) reject(new Error(`backend failed on ${payload}`))
        else resolve(count as number | undefined)
      }
      if (this.randomDelay !== undefined) setTimeout(settle, Math.random() * this.randomDelay)
      else this.held.push({ topic: message.topic, payload, settle })
    })
  }

  override subscribe(client: ClientHandle, session: Session, subscriptions: StoredSubscription[]): Promise<SubscribeResult[]> {
    for (const s of subscriptions) this.subscribed.push(s.topicFilter)
    return super.subscribe(client, session, subscriptions)
  }

  /** Wait until `n` calls are held. */
  async holding(n: number, timeout = 2000): Promise<void> {
    const deadline = Date.now() + timeout
    while (this.held.length < n) {
      if (Date.now() > deadline) throw new Error(`${this.held.length} publish calls held, expected ${n}`)
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }

  /** Settle every held call, last issued first. */
  settleReversed(): void {
    const held = this.held.splice(0)
    for (const call of held.reverse()) call.settle()
  }
}

/** The next `n` packets of `peer`. */
async function packets(peer: Peer, n: number): Promise<Packet[]> {
  const out: Packet[] = []
  for (let i = 0; i < n; i++) out.push(await peer.next())
  return out
}

const pubacks = (ids: number[]): Packet[] => ids.map((packetId) => ({ type: 'puback', packetId }))
/** MQTT 5 PUBACKs of messages nobody subscribed to. */
const pubacks5 = (ids: number[]): Packet[] =>
  ids.map((packetId) => ({ type: 'puback', packetId, reasonCode: ReasonCode.NoMatchingSubscribers }))
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('broker – pipelined PUBLISH with an asynchronous backend', () => {
  const teardown = useTeardown()

  it('PUBACKs leave in arrival order when later publishes finish first [MQTT-4.6.0-2]', async () => {
    const backend = new GatedBackend()
    const broker = makeBroker(teardown, { backend })
    const sub = await connected(broker, { clientId: 'sub' })
    await subscribe(sub, [{ topicFilter: 'p/#', qos: 0 }])
    const pub = await connected(broker, { clientId: 'pub' })
    for (const id of range(1, 10)) pub.send(publish(`p/${id}`, `m${id}`, 1, id))
    // All ten are in progress at once: the backend got every call before any answered.
    await backend.holding(10)
    expect(backend.held.map((h) => h.payload)).to.deep.equal(range(1, 10).map((i) => `m${i}`))
    await turns()
    expect(pub.takeReceived()).to.deep.equal([])
    backend.settleReversed()
    expect(await packets(pub, 10)).to.deep.equal(pubacks(range(1, 10)))
    const delivered = (await packets(sub, 10)) as PublishPacket[]
    expect(delivered.map((p) => p.payload.toString())).to.deep.equal(range(1, 10).map((i) => `m${i}`))
    expect(backend.maxInProgress).to.equal(10)
  })

  it('sends the acknowledgements of publishes the backend answers together in one write', async () => {
    const backend = new GatedBackend()
    const broker = makeBroker(teardown, { backend })
    const pub = await connected(broker, { clientId: 'pub' })
    let writes = 0
    pub.stream.on('data', () => writes++)
    for (const id of range(1, 20)) pub.send(publish('w', `m${id}`, 1, id))
    await backend.holding(20)
    // Answered in one go, as a batched Redis reply is: one promise job per call.
    for (const call of backend.held.splice(0)) call.settle()
    expect(await packets(pub, 20)).to.deep.equal(pubacks(range(1, 20)))
    expect(writes).to.equal(1)
  })

  for (const level of [4, 5] as const) {
    it(`level ${level}: QoS 0, 1 and 2 mixed, random settling: acknowledgements and deliveries in order [MQTT-4.6.0-3]`, async () => {
      const backend = new GatedBackend()
      backend.randomDelay = 15
      const broker = makeBroker(teardown, { backend })
      const sub = await connected(broker, { clientId: 'sub', protocolLevel: level })
      await subscribe(sub, [{ topicFilter: 'r', qos: 1 }])
      const pub = await connected(broker, { clientId: 'pub', protocolLevel: level })
      const expectedAcks: Packet[] = []
      const count = 60
      for (let i = 1; i <= count; i++) {
        const qos = i % 7 === 0 ? 2 : i % 3 === 0 ? 0 : 1
        pub.send(publish('r', `m${i}`, qos, qos > 0 ? i : undefined))
        if (qos === 1) expectedAcks.push({ type: 'puback', packetId: i })
        if (qos === 2) expectedAcks.push({ type: 'pubrec', packetId: i })
      }
      const acks = await packets(pub, expectedAcks.length)
      expect(acks).to.deep.equal(expectedAcks)
      const delivered: string[] = []
      for (let i = 0; i < count; i++) {
        const p = (await sub.next()) as PublishPacket
        delivered.push(p.payload.toString())
        if (p.qos === 1) sub.send({ type: 'puback', packetId: p.packetId! })
      }
      expect(delivered).to.deep.equal(range(1, count).map((i) => `m${i}`))
      expect(backend.maxInProgress).to.be.greaterThan(1)
      // The QoS 2 exchanges complete afterwards.
      for (const ack of expectedAcks.filter((a) => a.type === 'pubrec')) {
        pub.send({ type: 'pubrel', packetId: (ack as { packetId: number }).packetId })
        expect(await pub.next()).to.deep.equal({ type: 'pubcomp', packetId: (ack as { packetId: number }).packetId })
      }
    })
  }

  it('a SUBSCRIBE sent after publishes is handled only after they all finished', async () => {
    const backend = new GatedBackend()
    const broker = makeBroker(teardown, { backend })
    const pub = await connected(broker, { clientId: 'pub' })
    for (const id of range(1, 3)) pub.send(publish('s', `m${id}`, 1, id))
    pub.send({ type: 'subscribe', packetId: 9, subscriptions: [{ topicFilter: 'late', qos: 0 }] })
    pub.send(publish('s', 'm4', 1, 4))
    await backend.holding(3)
    await turns()
    // Neither the SUBSCRIBE nor the PUBLISH after it started.
    expect(backend.subscribed).to.deep.equal([])
    expect(backend.held).to.have.length(3)
    backend.settleReversed()
    expect(await packets(pub, 3)).to.deep.equal(pubacks([1, 2, 3]))
    expect(await pub.next()).to.deep.equal({ type: 'suback', packetId: 9, reasonCodes: [0] })
    expect(backend.subscribed).to.deep.equal(['late'])
    await backend.holding(1)
    backend.settleReversed()
    expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 4 })
  })

  it('a rejection closes the connection after the earlier PUBACKs; nothing after it is acknowledged', async () => {
    const backend = new GatedBackend()
    backend.failing.add('m3')
    const broker = makeBroker(teardown, { backend })
    const pub = await connected(broker, { clientId: 'pub', protocolLevel: 5 })
    for (const id of range(1, 6)) pub.send(publish('f', `m${id}`, 1, id))
    await backend.holding(6)
    backend.settleReversed()
    expect(await packets(pub, 2)).to.deep.equal(pubacks5([1, 2]))
    expect(await pub.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ImplementationSpecificError })
    await pub.waitClosed()
    expect(pub.takeReceived()).to.deep.equal([])
  })

  it('a PUBLISH that fails synchronously while earlier ones are in progress closes after their PUBACKs', async () => {
    const backend = new GatedBackend()
    const broker = makeBroker(teardown, { backend })
    const pub = await connected(broker, { clientId: 'pub', protocolLevel: 5 })
    pub.send(publish('t', 'm1', 1, 1))
    pub.send(publish('t', 'm2', 1, 2))
    pub.send(publish('t/+', 'bad', 1, 3))
    pub.send(publish('t', 'm4', 1, 4))
    await backend.holding(2)
    await turns()
    expect(backend.held).to.have.length(2)
    expect(pub.isConnectionClosed).to.equal(false)
    backend.settleReversed()
    expect(await packets(pub, 2)).to.deep.equal(pubacks5([1, 2]))
    expect(await pub.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.TopicNameInvalid })
    await pub.waitClosed()
    expect(backend.held).to.deep.equal([])
  })

  it(`holds at most ${PIPELINE_DEPTH} PUBLISH packets in progress per connection`, async () => {
    const backend = new GatedBackend()
    const broker = makeBroker(teardown, { backend })
    const pub = await connected(broker, { clientId: 'pub' })
    const total = PIPELINE_DEPTH + 20
    for (const id of range(1, total)) pub.send(publish('b', `m${id}`, 1, id))
    await backend.holding(PIPELINE_DEPTH)
    await turns()
    expect(backend.held).to.have.length(PIPELINE_DEPTH)
    backend.settleReversed()
    expect(await packets(pub, PIPELINE_DEPTH)).to.deep.equal(pubacks(range(1, PIPELINE_DEPTH)))
    await backend.holding(20)
    backend.settleReversed()
    expect(await packets(pub, 20)).to.deep.equal(pubacks(range(PIPELINE_DEPTH + 1, total)))
    expect(backend.maxInProgress).to.equal(PIPELINE_DEPTH)
  })

  it('MQTT 5: Receive Maximum counts the publishes in progress and frees them as PUBACKs leave (MQTT 5.0 4.9)', async () => {
    const backend = new GatedBackend()
    const broker = makeBroker(teardown, { backend, receiveMaximum: 4 })
    const pub = await connected(broker, { clientId: 'pub', protocolLevel: 5 })
    for (const round of [0, 1]) {
      const ids = range(round * 4 + 1, round * 4 + 4)
      for (const id of ids) pub.send(publish('q', `m${id}`, 1, id))
      await backend.holding(4)
      backend.settleReversed()
      expect(await packets(pub, 4)).to.deep.equal(pubacks5(ids))
    }
    // A fifth unacknowledged one exceeds it: the four earlier are acknowledged, then 0x93.
    for (const id of range(11, 15)) pub.send(publish('q', `m${id}`, 1, id))
    await backend.holding(4)
    await turns()
    expect(backend.held).to.have.length(4)
    backend.settleReversed()
    expect(await packets(pub, 4)).to.deep.equal(pubacks5(range(11, 14)))
    expect(await pub.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ReceiveMaximumExceeded })
    await pub.waitClosed()
  })

  it('a retained PUBLISH holds back the next one until routed, keeping backend calls in order [MQTT-3.3.1-5]', async () => {
    const backend = new GatedBackend()
    const broker = makeBroker(teardown, { backend })
    const sub = await connected(broker, { clientId: 'sub' })
    await subscribe(sub, [{ topicFilter: 'k', qos: 0 }])
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('k', 'm1', 1, 1))
    pub.send(publish('k', 'm2', 1, 2, { retain: true }))
    pub.send(publish('k', 'm3', 1, 3))
    // m1 is in progress; m2 stores its retained copy first, then publishes; m3 waits for m2.
    await backend.holding(2)
    await turns()
    expect(backend.held.map((h) => h.payload)).to.deep.equal(['m1', 'm2'])
    backend.settleReversed()
    await backend.holding(1)
    backend.settleReversed()
    expect(await packets(pub, 3)).to.deep.equal(pubacks([1, 2, 3]))
    const delivered = (await packets(sub, 3)) as PublishPacket[]
    expect(delivered.map((p) => p.payload.toString())).to.deep.equal(['m1', 'm2', 'm3'])
  })
})
