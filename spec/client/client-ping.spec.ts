import { expect } from 'chai'
import { Client } from '../../lib/client/client.js'
import { AbandonedError, CanceledError, ClosedError, ConnectionLostError, ConnectionRefusedError } from '../../lib/client/errors.js'
import { ReasonCode } from '../../lib/packet/index.js'
import { ScriptedBroker } from './helpers/scripted-broker.js'
import type { BrokerConnection } from './helpers/scripted-broker.js'
import { VirtualClock, settle } from './helpers/virtual-clock.js'

async function connected(keepalive = 60): Promise<{ client: Client; broker: BrokerConnection; clock: VirtualClock }> {
  const scripted = new ScriptedBroker()
  const clock = new VirtualClock()
  const pending = Client.connect({ dialer: scripted.dialer, clock, clientId: 'c1', keepalive })
  const broker = await scripted.next()
  await broker.accept()
  return { client: await pending, broker, clock }
}

const outcome = (promise: Promise<unknown>): Promise<unknown> => promise.then((value) => ({ value }), (error: unknown) => error)

describe('client – ping() and a 3.x CONNACK to an MQTT 5 CONNECT', () => {
  const clients: Client[] = []
  afterEach(() => {
    for (const client of clients.splice(0)) client.destroy()
  })

  it('ping() sends PINGREQ and resolves with the round trip on its PINGRESP', async () => {
    const { client, broker, clock } = await connected()
    clients.push(client)
    const pong = client.ping()
    await broker.expect('pingreq')
    let settled = false
    void pong.then(() => (settled = true))
    await clock.advance(25)
    expect(settled, 'no PINGRESP yet').to.equal(false)
    broker.send({ type: 'pingresp' })
    expect(await pong).to.equal(25)
  })

  it('matches PINGRESPs to PINGREQs in order: a keepalive PINGRESP does not answer a later ping()', async () => {
    const { client, broker, clock } = await connected(10)
    clients.push(client)
    await clock.advance(10_000)
    await broker.expect('pingreq') // the keepalive's
    const pong = client.ping()
    await broker.expect('pingreq') // ours
    let settled = false
    void pong.then(() => (settled = true))
    broker.send({ type: 'pingresp' })
    await settle()
    expect(settled, 'the first PINGRESP answers the keepalive PINGREQ').to.equal(false)
    await clock.advance(5)
    broker.send({ type: 'pingresp' })
    expect(await pong).to.equal(5)
  })

  it('ping() rejects: CanceledError on an aborted signal, AbandonedError on a later abort, and settles when the connection ends', async () => {
    const { client, broker } = await connected()
    clients.push(client)
    expect(await outcome(client.ping({ signal: AbortSignal.abort() }))).to.be.instanceOf(CanceledError)
    const controller = new AbortController()
    const abandoned = outcome(client.ping({ signal: controller.signal }))
    await broker.expect('pingreq')
    const lost = outcome(client.ping())
    await broker.expect('pingreq')
    controller.abort()
    expect(await abandoned).to.be.instanceOf(AbandonedError)
    // The abandoned ping keeps its slot: the first PINGRESP is its, not the next ping's.
    broker.send({ type: 'pingresp' })
    await settle()
    broker.end()
    const error = await lost
    expect(error).to.be.instanceOf(ConnectionLostError)
    expect((error as ConnectionLostError).outcome).to.equal('unknown')
    expect(await outcome(client.ping())).to.be.instanceOf(ClosedError)
  })

  it('ping() after end() rejects with ClosedError; one pending at end() settles with ClosedError', async () => {
    const { client, broker } = await connected()
    const pending = outcome(client.ping())
    await broker.expect('pingreq')
    const ended = client.end()
    await broker.expect('disconnect')
    await ended
    expect(await pending).to.be.instanceOf(ClosedError)
    expect(await outcome(client.ping())).to.be.instanceOf(ClosedError)
  })

  it('takes a 3.x CONNACK (20 02 00 01) to a v5 CONNECT as a refusal: unsupported protocol version', async () => {
    const scripted = new ScriptedBroker()
    const pending = outcome(Client.connect({ dialer: scripted.dialer, protocolVersion: 5, clientId: 'c' }))
    const broker = await scripted.next()
    const connect = await broker.expect('connect')
    expect(connect.protocolLevel).to.equal(5)
    broker.stream.write(Buffer.from([0x20, 0x02, 0x00, 0x01]))
    const error = await pending
    expect(error).to.be.instanceOf(ConnectionRefusedError)
    expect(error).to.include({ code: 'ERR_MQTT_REFUSED', outcome: 'refused', reasonCode: ReasonCode.UnsupportedProtocolVersion, returnCode: 1, transient: false })
    expect((error as ConnectionRefusedError).reasonString).to.match(/MQTT 3\.x CONNACK/)
    await settle()
    expect(broker.closed).to.equal(true)
  })

  it('maps the other 3.x return codes of such a CONNACK (4: bad user name or password)', async () => {
    const scripted = new ScriptedBroker()
    const pending = outcome(Client.connect({ dialer: scripted.dialer, protocolVersion: 5, clientId: 'c' }))
    const broker = await scripted.next()
    await broker.expect('connect')
    broker.stream.write(Buffer.from([0x20, 0x02, 0x00, 0x04]))
    expect(await pending).to.include({ reasonCode: ReasonCode.BadUserNameOrPassword, returnCode: 4 })
  })
})
