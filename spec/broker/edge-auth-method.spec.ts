/**
 * MQTT 5.0 4.12 [MQTT-4.12.0-1]: "If the Server does not support the Authentication Method supplied
 * by the Client, it MAY send a CONNACK with a Reason Code of 0x8C (Bad authentication method) or
 * 0x87 (Not Authorized) as described in section 4.13 and MUST close the Network Connection."
 * The broker answers 0x8C (docs/decisions.md); a backend says which methods it implements
 * (`Backend.authenticationMethods`), and the default supports none.
 */
import { expect } from 'chai'
import { SCRAM_SHA_256, ScramAuthenticator } from '../../lib/auth/scram.js'
import type { AuthenticationResult } from '../../lib/backend/backend.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnackPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { hex, RawClient, tcpPeer } from '../helpers/socket.js'
import { useTeardown } from '../helpers/teardown.js'

/** MQTT 5 CONNECT, clean start, client id "a", Authentication Method (0x15) "XYZ". */
const CONNECT_XYZ = hex('10 14 | 0004 4d515454 | 05 | 02 | 0000 | 06 15 0003 58595a | 0001 61')

/** CONNACK 0x8C with Reason String (0x1F) "authentication method not supported". */
const REASON = Buffer.from('authentication method not supported')
const CONNACK_8C = Buffer.concat([hex('20 29 | 00 | 8c | 26 1f 0023'), REASON])

describe('edges – unsupported MQTT 5 Authentication Method [MQTT-4.12.0-1]', () => {
  const teardown = useTeardown()

  it('the default backend supports no method: CONNACK 0x8C and close, authenticate never asked', async () => {
    let asked = 0
    const broker = makeBroker(teardown, {
      memory: {
        authenticate: (): AuthenticationResult => {
          asked++
          return { result: 'allow' }
        }
      }
    })
    const client = await RawClient.open(teardown, broker)
    client.send(CONNECT_XYZ)
    expect(await client.read(CONNACK_8C.length)).to.deep.equal(CONNACK_8C)
    await client.waitClosed()
    expect(client.received).to.deep.equal(CONNACK_8C)
    expect(asked).to.equal(0)
  })

  it('a backend implementing SCRAM-SHA-256 refuses another method with 0x8C', async () => {
    const scram = new ScramAuthenticator({ lookup: () => undefined })
    expect(scram.authenticate.authenticationMethods).to.deep.equal([SCRAM_SHA_256])
    const broker = makeBroker(teardown, { memory: { authenticate: scram.authenticate } })
    const client = await RawClient.open(teardown, broker)
    client.send(CONNECT_XYZ)
    expect(await client.read(CONNACK_8C.length)).to.deep.equal(CONNACK_8C)
    await client.waitClosed()
  })

  it('a declared method reaches authenticate and is echoed in CONNACK (MQTT 5.0 4.12)', async () => {
    const broker = makeBroker(teardown, {
      memory: { authenticationMethods: ['XYZ'], authenticate: () => ({ result: 'allow' }) }
    })
    const peer = await tcpPeer(teardown, broker, 5)
    peer.send(CONNECT_XYZ)
    const ack = (await peer.next()) as ConnackPacket
    expect(ack).to.deep.include({ type: 'connack', reasonCode: ReasonCode.Success })
    expect(ack.properties?.authenticationMethod).to.equal('XYZ')
    peer.send({ type: 'pingreq' })
    expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
  })

  it("TenantBackend answers with the methods of the client's tenant backend", async () => {
    const backend = new TenantBackend(() => new MemoryBackend({ authenticationMethods: ['XYZ'] }))
    const broker = makeBroker(teardown, { backend })
    const peer = await tcpPeer(teardown, broker, 5)
    peer.send(CONNECT_XYZ)
    expect(await peer.next()).to.deep.include({ type: 'connack', reasonCode: ReasonCode.Success })
    const refused = await RawClient.open(teardown, makeBroker(teardown, { backend: new TenantBackend(() => new MemoryBackend()) }))
    refused.send(CONNECT_XYZ)
    expect(await refused.read(CONNACK_8C.length)).to.deep.equal(CONNACK_8C)
  })
})
