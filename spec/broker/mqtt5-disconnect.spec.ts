import { expect } from 'chai'
import type { Broker } from '../../lib/broker/broker.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { ended, pingPong } from '../helpers/events.js'

async function peer(broker: Broker, fields: Partial<ConnectPacket> = {}, level: 4 | 5 = 5): Promise<Peer> {
  const p = new Peer(broker)
  expect(await p.connect({ protocolLevel: level, ...fields })).to.include({ type: 'connack', reasonCode: 0 })
  return p
}

async function watcher(broker: Broker, filter: string): Promise<Peer> {
  const p = await peer(broker, { clientId: 'watcher' })
  p.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: filter, qos: 0 }] })
  await p.next()
  return p
}

const will = { topic: 'will', payload: Buffer.from('w'), qos: 0 as const, retain: false }

describe('MQTT 5 – server DISCONNECT (MQTT 5.0 4.13)', () => {
  const teardown = useTeardown()

  it('broker.disconnect(): 0x98 Administrative action by default, with a Reason String; the will is published', async () => {
    const broker = makeBroker(teardown)
    const w = await watcher(broker, 'will')
    const p = await peer(broker, { clientId: 'a', will })
    expect(broker.disconnect('a', undefined, 'maintenance')).to.equal(true)
    expect(await p.next()).to.deep.equal({
      type: 'disconnect',
      reasonCode: ReasonCode.AdministrativeAction,
      properties: { reasonString: 'maintenance' }
    })
    await p.waitClosed()
    expect(await w.next()).to.deep.include({ topic: 'will' })
  })

  it('broker.disconnect() with 0x00 is a normal disconnection: no will', async () => {
    const broker = makeBroker(teardown)
    const w = await watcher(broker, 'will')
    const p = await peer(broker, { clientId: 'a', will })
    const done = ended(broker, 'a')
    broker.disconnect('a', ReasonCode.NormalDisconnection)
    const packet = await p.next()
    expect(packet.type).to.equal('disconnect')
    expect((packet as { reasonCode?: number }).reasonCode ?? 0).to.equal(ReasonCode.NormalDisconnection)
    await done
    await pingPong(w, 'no will after 0x00')
  })

  it('broker.disconnect() of an unknown client answers false', () => {
    const broker = makeBroker(teardown)
    expect(broker.disconnect('nobody')).to.equal(false)
  })

  for (const code of [ReasonCode.UseAnotherServer, ReasonCode.ServerMoved]) {
    it(`0x${code.toString(16)} carries the Server Reference (MQTT 5.0 4.11)`, async () => {
      const broker = makeBroker(teardown)
      const p = await peer(broker, { clientId: 'a' })
      broker.disconnect('a', code, undefined, 'other.example:1883')
      expect(await p.next()).to.deep.equal({ type: 'disconnect', reasonCode: code, properties: { serverReference: 'other.example:1883' } })
    })
  }

  it('3.1.1 clients are just closed (no DISCONNECT from a server at 3.1.1)', async () => {
    const broker = makeBroker(teardown)
    const p = await peer(broker, { clientId: 'old' }, 4)
    expect(broker.disconnect('old')).to.equal(true)
    await p.waitClosed()
    expect(p.takeReceived()).to.deep.equal([])
  })

  it('0x8B Server shutting down on broker.close()', async () => {
    const broker = makeBroker(teardown)
    const p = await peer(broker, { clientId: 'a' })
    void broker.close()
    expect(await p.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ServerShuttingDown })
  })

  it('0x8E Session taken over [MQTT-3.1.4-3]', async () => {
    const broker = makeBroker(teardown)
    const first = await peer(broker, { clientId: 'a' })
    await peer(broker, { clientId: 'a' })
    expect(await first.next()).to.deep.include({ type: 'disconnect', reasonCode: ReasonCode.SessionTakenOver })
  })

  it('0x97 Quota exceeded for a consumer whose outgoing queue overflows with QoS 1', async () => {
    const broker = makeBroker(teardown, { inflightWindow: 1, maxOutgoingQueue: 2 })
    const sub = await peer(broker, { clientId: 's' })
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 1 }] })
    await sub.next()
    const pub = await peer(broker, { clientId: 'p' })
    for (let i = 1; i <= 5; i++) pub.send({ type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, packetId: i, retain: false, dup: false })
    await sub.closed
    const packets = sub.takeReceived()
    expect(packets.at(-1)).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.QuotaExceeded })
    expect((packets[0] as PublishPacket).type).to.equal('publish')
  })

  it('0x8D Keep alive timeout', async () => {
    const broker = makeBroker(teardown, { timerInterval: 20 })
    const p = await peer(broker, { clientId: 'a', keepalive: 1 })
    expect(await p.next(3000)).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.KeepAliveTimeout })
  })
})
