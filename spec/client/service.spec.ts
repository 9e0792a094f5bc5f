import { expect } from 'chai'
import { Service } from '../../lib/client/service.js'
import type { ServiceOptions, ServiceState } from '../../lib/client/service.js'
import { ClosedError, ConnectionRefusedError, InvalidRequestError, LimitError, OfflineError } from '../../lib/client/errors.js'
import { backoffDelay } from '../../lib/client/backoff.js'
import type { InboundMessage } from '../../lib/client/inbound.js'
import { ReasonCode } from '../../lib/packet/index.js'
import { MemoryStore } from '../../lib/client/store/memory-store.js'
import { ScriptedBroker } from './helpers/scripted-broker.js'
import { VirtualClock, settle } from './helpers/virtual-clock.js'

function make(options: Partial<ServiceOptions> = {}): { service: Service; scripted: ScriptedBroker; clock: VirtualClock; states: ServiceState[] } {
  const scripted = new ScriptedBroker()
  const clock = new VirtualClock()
  const service = new Service({ dialer: scripted.dialer, clock, clientId: 's1', clean: false, random: () => 0.5, reconnect: { minDelayMs: 1000, maxDelayMs: 8000, stableAfterMs: 10_000 }, ...options })
  const states: ServiceState[] = []
  service.state$.subscribe((s) => states.push(s))
  return { service, scripted, clock, states }
}

describe('client – Service', () => {
  const services: Service[] = []
  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop().catch(() => undefined)
  })

  it('backs off exponentially with jitter, within bounds, and reconnects when the broker is back', async () => {
    for (let n = 0; n < 20; n++) {
      const d = backoffDelay(n, { minDelayMs: 1000, maxDelayMs: 60_000, jitter: 0.5 }, Math.random)
      const cap = Math.min(60_000, 1000 * 2 ** n)
      expect(d).to.be.within(cap / 2, cap)
    }
    const { service, scripted, clock, states } = make()
    services.push(service)
    scripted.down = true
    await service.start()
    await settle()
    const delays = () => states.filter((s) => s.type === 'offline').map((s) => (s as { retryInMs: number }).retryInMs)
    expect(delays()).to.deep.equal([750])
    await clock.advance(750)
    await clock.advance(1500)
    await clock.advance(3000)
    await clock.advance(6000)
    await clock.advance(6000)
    expect(delays()).to.deep.equal([750, 1500, 3000, 6000, 6000, 6000])
    scripted.down = false
    await clock.advance(6000)
    const broker = await scripted.next()
    await broker.accept()
    await settle()
    expect(states.at(-1)?.type).to.equal('online')
  })

  it('resends unacknowledged QoS 1/2 in order with DUP and the same ids when the session is present', async () => {
    const { service, scripted, clock } = make()
    services.push(service)
    await service.start()
    const first = await scripted.next()
    await first.accept()
    await service.online()
    const one = service.publish('t', 'a', { qos: 1 })
    const two = service.publish('t', 'b', { qos: 2 })
    const three = service.publish('t', 'c', { qos: 2 })
    const pa = await first.expect('publish')
    const pb = await first.expect('publish')
    const pc = await first.expect('publish')
    first.send({ type: 'pubrec', packetId: pc.packetId! })
    await first.expect('pubrel')
    first.end()
    await settle()
    await clock.advance(1000)
    const second = await scripted.next()
    await second.accept({ sessionPresent: true })
    const ra = await second.expect('publish')
    const rb = await second.expect('publish')
    const rc = await second.expect('pubrel')
    expect([ra.packetId, ra.dup, rb.packetId, rb.dup, rc.packetId]).to.deep.equal([pa.packetId, true, pb.packetId, true, pc.packetId])
    second.send({ type: 'puback', packetId: ra.packetId! })
    second.send({ type: 'pubrec', packetId: rb.packetId! })
    await second.expect('pubrel')
    second.send({ type: 'pubcomp', packetId: rb.packetId! })
    second.send({ type: 'pubcomp', packetId: rc.packetId! })
    await Promise.all([one, two, three])
  })

  it('resubscribes before sending queued messages when the broker has no session, and republishes in-doubt messages', async () => {
    const { service, scripted, clock } = make()
    services.push(service)
    await service.start()
    const first = await scripted.next()
    await first.accept()
    const sub = service.subscribe([{ topicFilter: 'a/#', qos: 1 }])
    const s = await first.expect('subscribe')
    first.send({ type: 'suback', packetId: s.packetId, reasonCodes: [1] })
    await sub
    const inDoubt = service.publish('t', 'x', { qos: 1 })
    await first.expect('publish')
    first.end()
    await settle()
    const queued = service.publish('t', 'y', { qos: 1 })
    await clock.advance(1000)
    const second = await scripted.next()
    await second.accept({ sessionPresent: false })
    const resub = await second.expect('subscribe')
    expect(resub.subscriptions.map((x) => x.topicFilter)).to.deep.equal(['a/#'])
    const p1 = await second.expect('publish')
    const p2 = await second.expect('publish')
    expect([p1.payload.toString(), p1.dup, p2.payload.toString()]).to.deep.equal(['x', false, 'y'])
    second.send({ type: 'puback', packetId: p1.packetId! })
    second.send({ type: 'puback', packetId: p2.packetId! })
    await Promise.all([inDoubt, queued])
  })

  it('queues while offline within bounds: a full queue rejects with LimitError, never hangs', async () => {
    const { service, scripted } = make({ offline: { maxMessages: 2, qos0MaxMessages: 1 } })
    services.push(service)
    scripted.down = true
    await service.start()
    const a = service.publish('t', 'a', { qos: 1 })
    const b = service.publish('t', 'b', { qos: 2 })
    expect(await service.publish('t', 'c', { qos: 1 }).catch((e: unknown) => e)).to.be.instanceOf(LimitError)
    const z = service.publish('t', 'z')
    expect(await service.publish('t', 'zz').catch((e: unknown) => e)).to.be.instanceOf(LimitError)
    await service.stop()
    for (const p of [a, b, z]) {
      const error = (await p.catch((e: unknown) => e)) as ClosedError
      expect(error).to.be.instanceOf(ClosedError)
      expect(error.outcome).to.equal('not-sent')
    }
  })

  it('stops on a credential refusal instead of hammering, and waits the maximum after a transient one', async () => {
    const { service, scripted, clock, states } = make()
    services.push(service)
    await service.start()
    const first = await scripted.next()
    await first.expect('connect')
    first.send({ type: 'connack', sessionPresent: false, reasonCode: 3 })
    await settle()
    expect(states.at(-1)).to.deep.include({ type: 'offline', retryInMs: 8000 })
    await clock.advance(8000)
    const second = await scripted.next()
    await second.expect('connect')
    second.send({ type: 'connack', sessionPresent: false, reasonCode: 4 })
    await settle()
    const last = states.at(-1)!
    expect(last.type).to.equal('stopped')
    expect((last as { error: Error }).error).to.be.instanceOf(ConnectionRefusedError)
    expect(scripted.dials).to.equal(2)
  })

  it('resets the backoff only after a stable connection', async () => {
    const { service, scripted, clock, states } = make()
    services.push(service)
    await service.start()
    const retries = () => states.filter((s) => s.type === 'offline').map((s) => (s as { retryInMs: number }).retryInMs)
    for (let i = 0; i < 3; i++) {
      const conn = await scripted.next()
      await conn.accept()
      await settle()
      conn.end()
      await settle()
      await clock.advance(retries().at(-1)!)
    }
    expect(retries()).to.deep.equal([750, 1500, 3000])
    const stable = await scripted.next()
    await stable.accept()
    await settle()
    await clock.advance(10_000)
    stable.end()
    await settle()
    expect(retries().at(-1)).to.equal(500)
  })

  it('observe() subscribes for the first observer and unsubscribes after the last leaves', async () => {
    const { service, scripted } = make({ protocolVersion: 5 })
    services.push(service)
    await service.start()
    const broker = await scripted.next()
    await broker.accept()
    await service.online()
    const stream = service.observe('s/+', { qos: 1 })
    const a: string[] = []
    const b: string[] = []
    const subA = stream.subscribe((m) => a.push(m.topic))
    const subB = stream.subscribe((m) => b.push(m.topic))
    const sub = await broker.expect('subscribe')
    broker.send({ type: 'suback', packetId: sub.packetId, reasonCodes: [1] })
    broker.send({ type: 'publish', topic: 's/1', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 5 })
    broker.send({ type: 'publish', topic: 'other', payload: Buffer.from('x'), qos: 0, retain: false, dup: false })
    expect((await broker.expect('puback')).packetId).to.equal(5)
    expect([a, b]).to.deep.equal([['s/1'], ['s/1']])
    subA.unsubscribe()
    await broker.expectNothing()
    subB.unsubscribe()
    const unsub = await broker.expect('unsubscribe')
    expect(unsub.topicFilters).to.deep.equal(['s/+'])
  })

  it('messages(): pulling the next message acknowledges the previous one', async () => {
    const { service, scripted } = make()
    services.push(service)
    await service.start()
    const broker = await scripted.next()
    await broker.accept()
    await service.online()
    const iterator = service.messages('q/#')
    for (const id of [1, 2]) broker.send({ type: 'publish', topic: 'q/x', payload: Buffer.from(String(id)), qos: 1, retain: false, dup: false, packetId: id })
    const first = await iterator.next()
    expect((first.value as InboundMessage).payload.toString()).to.equal('1')
    await broker.expectNothing()
    const second = await iterator.next()
    expect((second.value as InboundMessage).payload.toString()).to.equal('2')
    expect((await broker.expect('puback')).packetId).to.equal(1)
    await broker.expectNothing()
    await iterator.return!()
    expect((await broker.expect('puback')).packetId).to.equal(2)
  })

  it('backs off to the maximum after DISCONNECT 0x8E (session taken over)', async () => {
    const { service, scripted, states } = make({ protocolVersion: 5 })
    services.push(service)
    await service.start()
    const broker = await scripted.next()
    await broker.accept()
    await settle()
    broker.send({ type: 'disconnect', reasonCode: ReasonCode.SessionTakenOver })
    await settle()
    expect(states.at(-1)).to.deep.include({ type: 'offline', retryInMs: 8000 })
  })

  it('hands an unacknowledged inbound QoS 2 message over again after a restart: same id, redelivered, once', async () => {
    const store = new MemoryStore()
    const scripted = new ScriptedBroker()
    const clock = new VirtualClock()
    const options = { dialer: scripted.dialer, clock, clientId: 'r1', clean: false, store }
    const first = new Service(options)
    services.push(first)
    await first.start()
    const c1 = await scripted.next()
    await c1.accept()
    const pull = first.messages('t', { ack: 'manual' })
    const publish = { type: 'publish', topic: 't', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, packetId: 4 } as const
    c1.send(publish)
    const m1 = (await pull.next()).value as InboundMessage
    expect(m1.redelivered).to.equal(false)
    await c1.expectNothing()
    await first.stop()
    const second = new Service(options)
    services.push(second)
    await second.start()
    const c2 = await scripted.next()
    await c2.accept({ sessionPresent: true })
    c2.send({ ...publish, dup: true })
    await settle()
    const got: InboundMessage[] = []
    second.messages$.subscribe((m) => got.push(m))
    await settle()
    expect(got.map((m) => [m.id, m.redelivered, m.payload.toString()])).to.deep.equal([[m1.id, true, 'once']])
    expect((await c2.expect('pubrec')).packetId).to.equal(4)
    c2.send({ type: 'pubrel', packetId: 4 })
    expect((await c2.expect('pubcomp')).packetId).to.equal(4)
  })

  it('always resubscribes at MQTT 3.1 (no Session Present flag)', async () => {
    const { service, scripted, clock } = make({ protocolVersion: 3, reconnect: { minDelayMs: 100 } })
    services.push(service)
    await service.start()
    const c1 = await scripted.next()
    await c1.accept()
    const sub = service.subscribe('x/#')
    const s1 = await c1.expect('subscribe')
    c1.send({ type: 'suback', packetId: s1.packetId, reasonCodes: [0] })
    await sub
    c1.end()
    await settle()
    await clock.advance(100)
    const c2 = await scripted.next()
    await c2.accept({ sessionPresent: true })
    expect((await c2.expect('subscribe')).subscriptions.map((x) => x.topicFilter)).to.deep.equal(['x/#'])
  })

  it('follows an MQTT 5 server redirect (CONNACK 0x9D with Server Reference) when asked to', async () => {
    const { service, scripted, clock, states } = make({ protocolVersion: 5, reconnect: { followServerReference: true } })
    services.push(service)
    await service.start()
    const c1 = await scripted.next()
    await c1.expect('connect')
    c1.send({ type: 'connack', sessionPresent: false, reasonCode: ReasonCode.ServerMoved, properties: { serverReference: 'b.example:1884' } })
    await settle()
    await clock.advance(0)
    await scripted.next()
    expect(states.filter((s) => s.type === 'connecting').map((s) => (s as { server: string }).server)).to.deep.equal(['dialer', 'mqtt://b.example:1884'])
  })

  it('refuses a Service without a broker, or with a bad URL, and publishing before start()', async () => {
    expect(() => new Service({})).to.throw(InvalidRequestError)
    expect(() => new Service({ url: 'http://x' })).to.throw(InvalidRequestError)
    const { service } = make()
    services.push(service)
    expect(await service.publish('t', 'x', { qos: 1 }).catch((e: unknown) => e)).to.be.instanceOf(OfflineError)
  })
})
