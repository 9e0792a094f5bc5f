import { expect } from 'chai'
import { Client } from '../../lib/client/client.js'
import {
  AbandonedError,
  CanceledError,
  ClosedError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  ExpiredError,
  InvalidRequestError,
  KeepaliveTimeoutError,
  OfflineError,
  PublishFailedError,
  ServerDisconnectError,
  SubscribeError
} from '../../lib/client/errors.js'
import type { InboundMessage } from '../../lib/client/inbound.js'
import type { ClientOptions } from '../../lib/client/options.js'
import { ReasonCode, encode } from '../../lib/packet/index.js'
import { ScriptedBroker } from './helpers/scripted-broker.js'
import type { BrokerConnection } from './helpers/scripted-broker.js'
import { VirtualClock, settle } from './helpers/virtual-clock.js'

async function connected(options: ClientOptions = {}, connack = {}): Promise<{ client: Client; broker: BrokerConnection; clock: VirtualClock; scripted: ScriptedBroker }> {
  const scripted = new ScriptedBroker()
  const clock = new VirtualClock()
  const pending = Client.connect({ dialer: scripted.dialer, clock, clientId: 'c1', ...options })
  const broker = await scripted.next()
  await broker.accept(connack)
  const client = await pending
  return { client, broker, clock, scripted }
}

describe('client – Client', () => {
  const clients: Client[] = []
  afterEach(() => {
    for (const client of clients.splice(0)) client.destroy()
  })
  const track = <T extends { client: Client }>(value: T): T => {
    clients.push(value.client)
    return value
  }

  it('connects at 3.1.1 with the options in CONNECT and resolves on CONNACK', async () => {
    const scripted = new ScriptedBroker()
    const pending = Client.connect({ dialer: scripted.dialer, clientId: 'dev-1', clean: false, keepalive: 30, username: 'u', password: () => 'secret', will: { topic: 'w', payload: 'gone', qos: 1, retain: true } })
    const broker = await scripted.next()
    const connect = await broker.accept({ sessionPresent: true })
    expect(connect).to.include({ protocolLevel: 4, clean: false, keepalive: 30, clientId: 'dev-1', username: 'u' })
    expect(connect.password?.toString()).to.equal('secret')
    expect(connect.will).to.deep.include({ topic: 'w', qos: 1, retain: true })
    const client = track({ client: await pending }).client
    expect(client.connected).to.equal(true)
    expect(client.connack.sessionPresent).to.equal(true)
  })

  it('connects at 3.1 (MQIsdp) and at 5.0 with Receive Maximum and session expiry for clean: false', async () => {
    const v3 = track(await connected({ protocolVersion: 3 }))
    expect(v3.client.protocolLevel).to.equal(3)
    const scripted = new ScriptedBroker()
    const pending = Client.connect({ dialer: scripted.dialer, protocolVersion: 5, clientId: 'x', clean: false })
    const broker = await scripted.next()
    const connect = await broker.accept({ properties: { receiveMaximum: 5, assignedClientIdentifier: 'assigned', serverKeepAlive: 7, topicAliasMaximum: 3 } })
    expect(connect.properties).to.deep.include({ receiveMaximum: 256, sessionExpiryInterval: 0xffffffff })
    const client = track({ client: await pending }).client
    expect(client.limits).to.include({ receiveMaximum: 5, clientId: 'assigned', keepalive: 7, topicAliasMaximum: 3 })
  })

  it('rejects a refused CONNACK with ConnectionRefusedError (3.x code mapped, transient flag)', async () => {
    for (const [level, code, reason, transient] of [[4, 4, ReasonCode.BadUserNameOrPassword, false], [4, 3, ReasonCode.ServerUnavailable, true], [5, ReasonCode.ServerMoved, ReasonCode.ServerMoved, true]] as const) {
      const scripted = new ScriptedBroker()
      const pending = Client.connect({ dialer: scripted.dialer, protocolVersion: level, clientId: 'c' })
      const broker = await scripted.next()
      await broker.expect('connect')
      broker.send({ type: 'connack', sessionPresent: false, reasonCode: code, properties: level === 5 ? { serverReference: 'other:1883' } : undefined })
      const error = await pending.then(() => undefined, (e: unknown) => e)
      expect(error).to.be.instanceOf(ConnectionRefusedError)
      const refused = error as ConnectionRefusedError
      expect(refused).to.include({ code: 'ERR_MQTT_REFUSED', outcome: 'refused', reasonCode: reason, returnCode: code, transient })
      if (level === 5) expect(refused.serverReference).to.equal('other:1883')
    }
  })

  it('times out a connect without CONNACK (virtual time) and cancels on abort', async () => {
    const scripted = new ScriptedBroker()
    const clock = new VirtualClock()
    const pending = Client.connect({ dialer: scripted.dialer, clock, clientId: 'c', connectTimeoutMs: 5000 })
    const result = pending.then(() => undefined, (e: unknown) => e)
    const broker = await scripted.next()
    await broker.expect('connect')
    await clock.advance(4999)
    await clock.advance(1)
    const error = await result
    expect(error).to.be.instanceOf(ConnectTimeoutError)
    await settle()
    expect(broker.closed).to.equal(true)
    const controller = new AbortController()
    const aborted = Client.connect({ dialer: scripted.dialer, clientId: 'c', signal: controller.signal }).then(() => undefined, (e: unknown) => e)
    await scripted.next()
    controller.abort()
    expect(await aborted).to.be.instanceOf(CanceledError)
  })

  it('publishes QoS 0, 1 and 2 and resolves each when acknowledged', async () => {
    const { client, broker } = track(await connected())
    await client.publish('a/0', 'zero')
    const p0 = await broker.expect('publish')
    expect(p0).to.include({ topic: 'a/0', qos: 0 })
    let settled = false
    const one = client.publish('a/1', 'one', { qos: 1 }).then((r) => ((settled = true), r))
    const p1 = await broker.expect('publish')
    expect(p1).to.include({ topic: 'a/1', qos: 1, dup: false })
    await settle()
    expect(settled).to.equal(false)
    broker.send({ type: 'puback', packetId: p1.packetId! })
    expect(await one).to.deep.equal({ reasonCode: 0 })
    const two = client.publish('a/2', Buffer.from([1, 2]), { qos: 2, retain: true })
    const p2 = await broker.expect('publish')
    expect(p2).to.include({ qos: 2, retain: true })
    broker.send({ type: 'pubrec', packetId: p2.packetId! })
    const rel = await broker.expect('pubrel')
    expect(rel.packetId).to.equal(p2.packetId)
    broker.send({ type: 'pubcomp', packetId: p2.packetId! })
    expect(await two).to.deep.equal({ reasonCode: 0 })
  })

  it('writes the packets of one turn with one write', async () => {
    const { client, broker } = track(await connected())
    broker.chunks.length = 0
    const all = Promise.all([0, 1, 2, 3, 4].map((i) => client.publish(`t/${i}`, 'x', { qos: 1 })))
    for (let i = 0; i < 5; i++) broker.send({ type: 'puback', packetId: (await broker.expect('publish')).packetId! })
    await all
    expect(broker.chunks.length).to.equal(1)
  })

  it('keeps at most Receive Maximum QoS 1/2 messages on the wire; abort before sending cancels, after abandons', async () => {
    const { client, broker } = track(await connected({ protocolVersion: 5 }, { properties: { receiveMaximum: 2 } }))
    const a = client.publish('t', 'a', { qos: 1 })
    const abortSent = new AbortController()
    const b = client.publish('t', 'b', { qos: 1, signal: abortSent.signal }).then(() => 'ok', (e: unknown) => e)
    const abortQueued = new AbortController()
    const c = client.publish('t', 'c', { qos: 1, signal: abortQueued.signal }).then(() => 'ok', (e: unknown) => e)
    const d = client.publish('t', 'd', { qos: 1 })
    const pa = await broker.expect('publish')
    const pb = await broker.expect('publish')
    await broker.expectNothing()
    abortQueued.abort()
    abortSent.abort()
    expect(await c).to.be.instanceOf(CanceledError)
    const abandoned = (await b) as AbandonedError
    expect(abandoned).to.be.instanceOf(AbandonedError)
    expect(abandoned.outcome).to.equal('unknown')
    await broker.expectNothing()
    broker.send({ type: 'puback', packetId: pb.packetId! })
    const pd = await broker.expect('publish')
    expect(pd.payload.toString()).to.equal('d')
    broker.send({ type: 'puback', packetId: pa.packetId! })
    broker.send({ type: 'puback', packetId: pd.packetId! })
    await a
    await d
  })

  it('rejects a v5 PUBACK failure with PublishFailedError and checks requests against CONNACK limits', async () => {
    const { client, broker } = track(await connected({ protocolVersion: 5 }, { properties: { maximumQoS: 1, retainAvailable: false, maximumPacketSize: 100, wildcardSubscriptionAvailable: false } }))
    const p = client.publish('t', 'x', { qos: 1 }).catch((e: unknown) => e)
    const packet = await broker.expect('publish')
    broker.send({ type: 'puback', packetId: packet.packetId!, reasonCode: ReasonCode.NotAuthorized })
    const failed = (await p) as PublishFailedError
    expect(failed).to.be.instanceOf(PublishFailedError)
    expect(failed).to.include({ outcome: 'refused', reasonCode: ReasonCode.NotAuthorized })
    const invalid = async (promise: Promise<unknown>, code: number): Promise<void> => {
      const error = (await promise.catch((e: unknown) => e)) as InvalidRequestError
      expect(error).to.be.instanceOf(InvalidRequestError)
      expect(error).to.include({ outcome: 'not-sent', reasonCode: code })
    }
    await invalid(client.publish('t', 'x', { qos: 2 }), ReasonCode.QoSNotSupported)
    await invalid(client.publish('t', 'x', { retain: true }), ReasonCode.RetainNotSupported)
    await invalid(client.publish('t', Buffer.alloc(200)), ReasonCode.PacketTooLarge)
    await invalid(client.publish('a/+', 'x'), ReasonCode.TopicNameInvalid)
    await invalid(client.subscribe('a/#'), ReasonCode.WildcardSubscriptionsNotSupported)
    await broker.expectNothing()
  })

  it('subscribes with options and an identifier; a refused filter rejects with SubscribeError unless allowPartial', async () => {
    const { client, broker } = track(await connected({ protocolVersion: 5 }))
    const ok = client.subscribe([{ topicFilter: 'a/#', qos: 1, noLocal: true, retainHandling: 2 }, 'b'], { subscriptionIdentifier: 7 })
    const sub = await broker.expect('subscribe')
    expect(sub.subscriptions[0]).to.deep.include({ topicFilter: 'a/#', qos: 1, noLocal: true, retainHandling: 2 })
    expect(sub.properties?.subscriptionIdentifiers).to.deep.equal([7])
    broker.send({ type: 'suback', packetId: sub.packetId, reasonCodes: [1, 0] })
    expect((await ok).reasonCodes).to.deep.equal([1, 0])
    const refused = client.subscribe(['x', 'y']).catch((e: unknown) => e)
    const sub2 = await broker.expect('subscribe')
    broker.send({ type: 'suback', packetId: sub2.packetId, reasonCodes: [0, ReasonCode.NotAuthorized] })
    const error = (await refused) as SubscribeError
    expect(error).to.be.instanceOf(SubscribeError)
    expect(error.results).to.deep.equal([0, ReasonCode.NotAuthorized])
    const partial = client.subscribe(['x', 'y'], { allowPartial: true })
    const sub3 = await broker.expect('subscribe')
    broker.send({ type: 'suback', packetId: sub3.packetId, reasonCodes: [0, 0x80] })
    expect((await partial).reasonCodes).to.deep.equal([0, 0x80])
    const un = client.unsubscribe('a/#')
    const unsub = await broker.expect('unsubscribe')
    broker.send({ type: 'unsuback', packetId: unsub.packetId, reasonCodes: [ReasonCode.NoSubscriptionExisted] })
    expect((await un).reasonCodes).to.deep.equal([ReasonCode.NoSubscriptionExisted])
  })

  it('acknowledges inbound QoS 1 in arrival order whatever order the application acks in', async () => {
    const { client, broker } = track(await connected({ manualAck: true }))
    const got: InboundMessage[] = []
    client.messages$.subscribe((m) => got.push(m))
    for (const id of [1, 2, 3]) broker.send({ type: 'publish', topic: 't', payload: Buffer.from(String(id)), qos: 1, retain: false, dup: false, packetId: id })
    await settle()
    expect(got.map((m) => m.payload.toString())).to.deep.equal(['1', '2', '3'])
    await broker.expectNothing()
    got[2]!.ack()
    await broker.expectNothing()
    got[0]!.ack()
    expect((await broker.expect('puback')).packetId).to.equal(1)
    await broker.expectNothing()
    got[1]!.ack()
    expect((await broker.expect('puback')).packetId).to.equal(2)
    expect((await broker.expect('puback')).packetId).to.equal(3)
  })

  it('hands an inbound QoS 2 message over once; a resent PUBLISH is only re-acknowledged', async () => {
    const { client, broker } = track(await connected())
    const got: InboundMessage[] = []
    client.messages$.subscribe((m) => got.push(m))
    const publish = { type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 9 } as const
    broker.send(publish)
    expect((await broker.expect('pubrec')).packetId).to.equal(9)
    broker.send({ ...publish, dup: true })
    expect((await broker.expect('pubrec')).packetId).to.equal(9)
    broker.send({ type: 'pubrel', packetId: 9 })
    expect((await broker.expect('pubcomp')).packetId).to.equal(9)
    expect(got.length).to.equal(1)
    broker.send({ ...publish, payload: Buffer.from('y') })
    await broker.expect('pubrec')
    expect(got.map((m) => m.payload.toString())).to.deep.equal(['x', 'y'])
  })

  it('gives every inbound message an own, enumerable id: a spread or JSON copy keeps it', async () => {
    const { client, broker } = track(await connected())
    const got: InboundMessage[] = []
    client.messages$.subscribe((m) => got.push(m))
    for (const qos of [0, 1, 2] as const) broker.send({ type: 'publish', topic: 't', payload: Buffer.from(String(qos)), qos, retain: false, dup: false, packetId: qos === 0 ? undefined : 10 + qos })
    await broker.expect('puback')
    await broker.expect('pubrec')
    expect(got.length).to.equal(3)
    const ids = got.map((m) => m.id)
    expect(new Set(ids).size).to.equal(3)
    for (const [i, m] of got.entries()) {
      expect(Object.keys(m)).to.include('id')
      expect({ ...m }.id).to.equal(ids[i])
      expect((JSON.parse(JSON.stringify({ ...m, payload: undefined })) as { id: string }).id).to.equal(ids[i])
    }
  })

  it('resolves inbound topic aliases (v5) and refuses one above our maximum with DISCONNECT 0x94', async () => {
    const { client, broker } = track(await connected({ protocolVersion: 5, properties: { topicAliasMaximum: 2 } }))
    const topics: string[] = []
    client.messages$.subscribe((m) => topics.push(m.topic))
    broker.send({ type: 'publish', topic: 'long/topic', payload: Buffer.from('1'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } })
    broker.send({ type: 'publish', topic: '', payload: Buffer.from('2'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } })
    await settle()
    expect(topics).to.deep.equal(['long/topic', 'long/topic'])
    broker.send({ type: 'publish', topic: 'x', payload: Buffer.from('3'), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } })
    expect((await broker.expect('disconnect')).reasonCode).to.equal(ReasonCode.TopicAliasInvalid)
    expect((await client.closed).initiator).to.equal('protocol')
  })

  it('uses outbound topic aliases for QoS 0 up to the broker maximum (option topicAliases)', async () => {
    const { client, broker } = track(await connected({ protocolVersion: 5, topicAliases: true }, { properties: { topicAliasMaximum: 1 } }))
    await client.publish('a', '1')
    await client.publish('a', '2')
    await client.publish('b', '3')
    const [p1, p2, p3] = [await broker.expect('publish'), await broker.expect('publish'), await broker.expect('publish')]
    expect([p1.topic, p1.properties?.topicAlias]).to.deep.equal(['a', 1])
    expect([p2.topic, p2.properties?.topicAlias]).to.deep.equal(['', 1])
    expect([p3.topic, p3.properties?.topicAlias]).to.deep.equal(['b', undefined])
  })

  it('sends PINGREQ after a keepalive of send-idleness and drops a dead connection after the ping timeout', async () => {
    const { client, broker, clock } = track(await connected({ keepalive: 10, pingTimeoutMs: 3000 }))
    await clock.advance(9000)
    await broker.expectNothing()
    await clock.advance(1000)
    await broker.expect('pingreq')
    broker.send({ type: 'pingresp' })
    await settle()
    await clock.advance(10_000)
    await broker.expect('pingreq')
    await clock.advance(3000)
    const info = await client.closed
    expect(info.error).to.be.instanceOf(KeepaliveTimeoutError)
  })

  it('settles everything pending when the connection drops (outcome per request)', async () => {
    const { client, broker } = track(await connected({}, {}))
    const sent = client.publish('t', 'x', { qos: 1 }).catch((e: unknown) => e)
    const sub = client.subscribe('t').catch((e: unknown) => e)
    await broker.expect('publish')
    await broker.expect('subscribe')
    broker.end()
    const lost = (await sent) as ConnectionLostError
    expect(lost).to.be.instanceOf(ConnectionLostError)
    expect(lost.outcome).to.equal('unknown')
    expect(await sub).to.be.instanceOf(ConnectionLostError)
    expect((await client.closed).initiator).to.equal('network')
    expect(await client.publish('t', 'x').catch((e: unknown) => e)).to.be.instanceOf(ClosedError)
  })

  it('reports a server DISCONNECT with its reason and redirect (v5)', async () => {
    const { client, broker } = track(await connected({ protocolVersion: 5 }))
    broker.send({ type: 'disconnect', reasonCode: ReasonCode.UseAnotherServer, properties: { serverReference: 'b:1883' } })
    const info = await client.closed
    expect(info.initiator).to.equal('server')
    expect(info.error).to.be.instanceOf(ServerDisconnectError)
    expect(info.error).to.include({ reasonCode: ReasonCode.UseAnotherServer, serverReference: 'b:1883' })
  })

  it('runs an enhanced authentication exchange (v5 AUTH)', async () => {
    const scripted = new ScriptedBroker()
    const pending = Client.connect({
      dialer: scripted.dialer,
      protocolVersion: 5,
      clientId: 'c',
      auth: { method: 'TEST', data: () => Buffer.from('first'), challenge: (data) => Buffer.from(`answer:${data?.toString() ?? ''}`) }
    })
    const broker = await scripted.next()
    const connect = await broker.expect('connect')
    expect(connect.properties).to.deep.include({ authenticationMethod: 'TEST' })
    expect(connect.properties?.authenticationData?.toString()).to.equal('first')
    broker.send({ type: 'auth', reasonCode: ReasonCode.ContinueAuthentication, properties: { authenticationMethod: 'TEST', authenticationData: Buffer.from('nonce') } })
    const auth = await broker.expect('auth')
    expect(auth.properties?.authenticationData?.toString()).to.equal('answer:nonce')
    broker.send({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { authenticationMethod: 'TEST' } })
    track({ client: await pending })
  })

  it('end() sends DISCONNECT and rejects later calls with ClosedError; calls before CONNACK are impossible', async () => {
    const { client, broker } = track(await connected())
    await client.end()
    await broker.expect('disconnect')
    expect(await client.subscribe('a').catch((e: unknown) => e)).to.be.instanceOf(ClosedError)
    expect(new OfflineError().outcome).to.equal('not-sent')
  })

  it('holds messages that arrive right behind CONNACK for the first observer, unacknowledged until then', async () => {
    const scripted = new ScriptedBroker()
    const pending = Client.connect({ dialer: scripted.dialer, clientId: 'c', clean: false })
    const broker = await scripted.next()
    await broker.expect('connect')
    // CONNACK and the session's backlog in one write, as a broker with a persistent session sends them.
    broker.stream.write(Buffer.concat([
      encode({ type: 'connack', sessionPresent: true, reasonCode: 0 }),
      encode({ type: 'publish', topic: 'backlog', payload: Buffer.from('1'), qos: 1, retain: false, dup: false, packetId: 3 })
    ]))
    const client = track({ client: await pending }).client
    await broker.expectNothing()
    const got: string[] = []
    client.messages$.subscribe((m) => got.push(m.topic))
    expect(got).to.deep.equal(['backlog'])
    expect((await broker.expect('puback')).packetId).to.equal(3)
  })

  it('counts a queued MQTT 5 message\'s expiry down and drops it when it runs out (virtual time)', async () => {
    const { client, broker, clock } = track(await connected({ protocolVersion: 5 }, { properties: { receiveMaximum: 1 } }))
    const first = client.publish('t', 'a', { qos: 1 })
    const second = client.publish('t', 'b', { qos: 1, properties: { messageExpiryInterval: 5 } })
    const third = client.publish('t', 'c', { qos: 1, properties: { messageExpiryInterval: 2 } }).catch((e: unknown) => e)
    const pa = await broker.expect('publish')
    await clock.advance(3000)
    broker.send({ type: 'puback', packetId: pa.packetId! })
    await first
    const pb = await broker.expect('publish')
    expect(pb.properties?.messageExpiryInterval).to.equal(2)
    broker.send({ type: 'puback', packetId: pb.packetId! })
    await second
    const expired = (await third) as ExpiredError
    expect(expired).to.be.instanceOf(ExpiredError)
    expect(expired.outcome).to.equal('not-sent')
    await broker.expectNothing()
  })

  it('re-authenticates on an open connection (v5 AUTH 0x19, challenge, AUTH 0x00)', async () => {
    let round = 0
    const { client, broker } = track(await connected({ protocolVersion: 5, auth: { method: 'TEST', data: () => Buffer.from(`token-${++round}`), challenge: (data) => Buffer.from(`re:${data?.toString() ?? ''}`) } }, { properties: { authenticationMethod: 'TEST' } }))
    const done = client.reauthenticate()
    const start = await broker.expect('auth')
    expect([start.reasonCode, start.properties?.authenticationData?.toString()]).to.deep.equal([ReasonCode.ReAuthenticate, 'token-2'])
    broker.send({ type: 'auth', reasonCode: ReasonCode.ContinueAuthentication, properties: { authenticationMethod: 'TEST', authenticationData: Buffer.from('n') } })
    expect((await broker.expect('auth')).properties?.authenticationData?.toString()).to.equal('re:n')
    broker.send({ type: 'auth', reasonCode: ReasonCode.Success, properties: { authenticationMethod: 'TEST' } })
    await done
    const refused = client.reauthenticate().catch((e: unknown) => e)
    await broker.expect('auth')
    broker.send({ type: 'disconnect', reasonCode: ReasonCode.NotAuthorized })
    expect(await refused).to.be.instanceOf(ServerDisconnectError)
  })

  it('end() waits for unfinished QoS 1/2 (drainMs) and an abort turns it into destroy() without DISCONNECT', async () => {
    const { client, broker } = track(await connected())
    const sent = client.publish('t', 'x', { qos: 1 })
    const packet = await broker.expect('publish')
    const controller = new AbortController()
    const ending = client.end({ drainMs: 60_000, signal: controller.signal })
    await broker.expectNothing()
    broker.send({ type: 'puback', packetId: packet.packetId! })
    await sent
    await ending
    await broker.expect('disconnect')
    const other = track(await connected())
    void other.client.publish('t', 'y', { qos: 1 }).catch(() => undefined)
    await other.broker.expect('publish')
    const aborted = new AbortController()
    const end2 = other.client.end({ drainMs: 60_000, signal: aborted.signal })
    aborted.abort()
    await end2
    expect(other.broker.received.map((p) => p.type)).to.deep.equal([])
    expect((await other.client.closed).initiator).to.equal('user')
  })

  it('traces packets in both directions on packets$ while observed', async () => {
    const { client, broker } = track(await connected())
    const trace: string[] = []
    client.packets$.subscribe(({ direction, packet }) => trace.push(`${direction} ${packet.type}`))
    const done = client.publish('t', 'x', { qos: 1 })
    const p = await broker.expect('publish')
    broker.send({ type: 'puback', packetId: p.packetId! })
    await done
    expect(trace).to.deep.equal(['out publish', 'in puback'])
  })
})
