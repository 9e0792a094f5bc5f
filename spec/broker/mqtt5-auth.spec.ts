import { expect } from 'chai'
import type { AuthenticationResult } from '../../lib/backend/backend.js'
import { createScramCredentials, SCRAM_SHA_256, ScramAuthenticator, ScramClient } from '../../lib/auth/scram.js'
import type { ScramCredentials } from '../../lib/auth/scram.js'
import type { Broker } from '../../lib/broker/broker.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { AuthPacket, ConnackPacket, ConnectPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connect, flow, Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'

describe('SCRAM-SHA-256 (RFC 5802, RFC 7677)', () => {
  it('the client side computes the RFC 7677 section 3 example', () => {
    const client = new ScramClient('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO')
    expect(client.first().toString()).to.equal('n,,n=user,r=rOprNGfwEbeRWgbNEkqO')
    const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'
    expect(client.final(serverFirst).toString()).to.equal(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='
    )
    expect(client.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).to.equal(true)
    expect(client.verify('v=AAAA')).to.equal(false)
  })

  it('stored credentials are salted and iterated; fewer than 4096 iterations are refused', () => {
    const a = createScramCredentials('pencil')
    const b = createScramCredentials('pencil')
    expect(a.iterations).to.equal(4096)
    expect(a.salt.equals(b.salt)).to.equal(false)
    expect(a.storedKey.equals(b.storedKey)).to.equal(false)
    expect(() => createScramCredentials('pencil', { iterations: 1000 })).to.throw(RangeError)
  })
})

function scramBroker(teardown: ReturnType<typeof useTeardown>, users: Record<string, ScramCredentials>): Broker {
  const scram = new ScramAuthenticator({ lookup: (username) => users[username] })
  return makeBroker(teardown, { memory: { authenticate: scram.authenticate } })
}

function auth(reasonCode: number, data: Buffer, method = SCRAM_SHA_256): AuthPacket {
  return { type: 'auth', reasonCode, properties: { authenticationMethod: method, authenticationData: data } }
}

async function scramConnect(broker: Broker, client: ScramClient, fields: Partial<ConnectPacket> = {}): Promise<{ peer: Peer; connack: ConnackPacket }> {
  const peer = new Peer(broker)
  peer.send(
    connect({
      protocolLevel: 5,
      clientId: 'c',
      properties: { authenticationMethod: SCRAM_SHA_256, authenticationData: client.first() },
      ...fields
    })
  )
  const challenge = (await peer.next()) as AuthPacket
  expect(challenge).to.deep.include({ type: 'auth', reasonCode: ReasonCode.ContinueAuthentication })
  expect(challenge.properties?.authenticationMethod).to.equal(SCRAM_SHA_256)
  peer.send(auth(ReasonCode.ContinueAuthentication, client.final(challenge.properties!.authenticationData!)))
  return { peer, connack: (await peer.next()) as ConnackPacket }
}

describe('MQTT 5 – enhanced authentication (MQTT 5.0 4.12)', () => {
  const teardown = useTeardown()
  const users = { alice: createScramCredentials('wonderland') }

  it('CONNECT → AUTH 0x18 → AUTH 0x18 → CONNACK 0x00 with the server proof [MQTT-4.12.0-2] [MQTT-4.12.0-5]', async () => {
    const broker = scramBroker(teardown, users)
    const client = new ScramClient('alice', 'wonderland')
    const { peer, connack } = await scramConnect(broker, client)
    expect(connack).to.deep.include({ type: 'connack', reasonCode: 0 })
    expect(connack.properties?.authenticationMethod).to.equal(SCRAM_SHA_256)
    expect(client.verify(connack.properties!.authenticationData!)).to.equal(true)
    // The connection works.
    peer.send({ type: 'pingreq' })
    expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
  })

  it('a wrong password is CONNACK 0x86 and closes [MQTT-4.12.0-4]', async () => {
    const broker = scramBroker(teardown, users)
    const { peer, connack } = await scramConnect(broker, new ScramClient('alice', 'looking-glass'))
    expect(connack).to.deep.include({ type: 'connack', reasonCode: ReasonCode.BadUserNameOrPassword })
    await peer.waitClosed()
  })

  it('an unknown user is challenged like a known one and refused at the proof', async () => {
    const broker = scramBroker(teardown, users)
    const { connack } = await scramConnect(broker, new ScramClient('mallory', 'x'))
    expect(connack).to.deep.include({ reasonCode: ReasonCode.BadUserNameOrPassword })
  })

  it('another method, or none, is CONNACK 0x8C Bad authentication method (3.1.1: return code 4)', async () => {
    const broker = scramBroker(teardown, users)
    await flow(broker)
      .send(connect({ protocolLevel: 5, properties: { authenticationMethod: 'PLAIN-X' } }))
      .expect((p) => expect(p).to.deep.include({ type: 'connack', reasonCode: ReasonCode.BadAuthenticationMethod }))
      .expectClose()
      .run()
    await flow(broker)
      .send(connect({ protocolLevel: 4, username: 'alice', password: Buffer.from('wonderland') }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 4 })
      .run()
  })

  it('a packet other than AUTH during the exchange is refused with CONNACK 0x82', async () => {
    const broker = scramBroker(teardown, users)
    const peer = new Peer(broker)
    peer.send(connect({ protocolLevel: 5, properties: { authenticationMethod: SCRAM_SHA_256, authenticationData: new ScramClient('alice', 'w').first() } }))
    expect(await peer.next()).to.deep.include({ type: 'auth' })
    peer.send({ type: 'pingreq' })
    expect(await peer.next()).to.deep.include({ type: 'connack', reasonCode: ReasonCode.ProtocolError })
    await peer.waitClosed()
  })

  it('AUTH with another method during the exchange is refused with 0x82 [MQTT-4.12.0-5]', async () => {
    const broker = scramBroker(teardown, users)
    const peer = new Peer(broker)
    const client = new ScramClient('alice', 'wonderland')
    peer.send(connect({ protocolLevel: 5, properties: { authenticationMethod: SCRAM_SHA_256, authenticationData: client.first() } }))
    const challenge = (await peer.next()) as AuthPacket
    peer.send(auth(ReasonCode.ContinueAuthentication, client.final(challenge.properties!.authenticationData!), 'OTHER'))
    expect(await peer.next()).to.deep.include({ type: 'connack', reasonCode: ReasonCode.ProtocolError })
  })

  it('re-authentication: AUTH 0x19 → AUTH 0x18 → AUTH 0x18 → AUTH 0x00 (MQTT 5.0 4.12.1)', async () => {
    const broker = scramBroker(teardown, users)
    const { peer, connack } = await scramConnect(broker, new ScramClient('alice', 'wonderland'))
    expect(connack.reasonCode).to.equal(0)
    const again = new ScramClient('alice', 'wonderland')
    peer.send(auth(ReasonCode.ReAuthenticate, again.first()))
    const challenge = (await peer.next()) as AuthPacket
    expect(challenge.reasonCode).to.equal(ReasonCode.ContinueAuthentication)
    peer.send(auth(ReasonCode.ContinueAuthentication, again.final(challenge.properties!.authenticationData!)))
    const done = (await peer.next()) as AuthPacket
    expect(done).to.deep.include({ type: 'auth', reasonCode: ReasonCode.Success })
    expect(again.verify(done.properties!.authenticationData!)).to.equal(true)
    peer.send({ type: 'pingreq' })
    expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
  })

  it('a failed re-authentication is DISCONNECT 0x87 (0x86 is no DISCONNECT code) [MQTT-4.12.1-2]', async () => {
    const broker = scramBroker(teardown, users)
    const { peer } = await scramConnect(broker, new ScramClient('alice', 'wonderland'))
    const wrong = new ScramClient('alice', 'nope')
    peer.send(auth(ReasonCode.ReAuthenticate, wrong.first()))
    const challenge = (await peer.next()) as AuthPacket
    peer.send(auth(ReasonCode.ContinueAuthentication, wrong.final(challenge.properties!.authenticationData!)))
    expect(await peer.next()).to.deep.include({ type: 'disconnect', reasonCode: ReasonCode.NotAuthorized })
    await peer.waitClosed()
  })

  it('re-authentication with another method is a protocol error [MQTT-4.12.1-1]', async () => {
    const broker = scramBroker(teardown, users)
    const { peer } = await scramConnect(broker, new ScramClient('alice', 'wonderland'))
    peer.send(auth(ReasonCode.ReAuthenticate, Buffer.from('x'), 'OTHER'))
    expect(await peer.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ProtocolError })
  })

  it("a backend answering 'continue' to a CONNECT without a method refuses with 0x8C [MQTT-4.12.0-6]", async () => {
    const broker = makeBroker(teardown, {
      memory: { authenticate: (): AuthenticationResult => ({ result: 'continue', properties: {} }) }
    })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect((p) => expect(p).to.deep.include({ type: 'connack', reasonCode: ReasonCode.BadAuthenticationMethod }))
      .run()
  })
})

describe('MQTT 5 – server redirection (MQTT 5.0 4.11)', () => {
  const teardown = useTeardown()

  for (const code of [ReasonCode.UseAnotherServer, ReasonCode.ServerMoved]) {
    it(`a backend redirect is CONNACK 0x${code.toString(16)} with the Server Reference`, async () => {
      const broker = makeBroker(teardown, {
        memory: { authenticate: (): AuthenticationResult => ({ result: 'redirect', reasonCode: code, serverReference: 'b.example:1883' }) }
      })
      await flow(broker)
        .send(connect({ protocolLevel: 5 }))
        .expect({ type: 'connack', sessionPresent: false, reasonCode: code, properties: { serverReference: 'b.example:1883' } })
        .expectClose()
        .run()
      // 3.1.1 cannot be told where to go: server unavailable.
      await flow(broker)
        .send(connect({ protocolLevel: 4 }))
        .expect({ type: 'connack', sessionPresent: false, reasonCode: 3 })
        .run()
    })
  }
})
