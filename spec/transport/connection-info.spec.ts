import { expect } from 'chai'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { AuthenticationResult, Credentials } from '../../lib/backend/backend.js'
import type { BrokerEvent } from '../../lib/broker/events.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'

describe('transport – connection info for authentication and events', () => {
  const teardown = useTeardown()

  it('every CONNECT and AUTH (enhanced authentication, re-authentication) carries the connection', async () => {
    const seen: Credentials[] = []
    const broker = makeBroker(teardown, {
      memory: {
        authenticate: (_client, credentials): AuthenticationResult => {
          seen.push(credentials)
          // First step of a made-up two-step method: ask once, then allow.
          return credentials.authenticationData?.toString() === 'first' ? { result: 'continue', properties: {} } : { result: 'allow' }
        }
      }
    })
    const events: BrokerEvent[] = []
    const subscription = broker.events$.subscribe((e) => events.push(e))
    teardown.defer(() => subscription.unsubscribe())
    const { addresses } = await broker.listenAll([{ kind: 'tcp', port: 0, name: 'edge' }])
    const socket = await new Promise<Socket>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: addresses[0]!.port }, () => resolve(s))
    })
    teardown.defer(() => socket.destroy())
    const peer = new Peer({ stream: socket })
    const method = { authenticationMethod: 'TWO-STEP' }
    const challenge = await peer.connect({ protocolLevel: 5, clientId: 'c', properties: { ...method, authenticationData: Buffer.from('first') } })
    expect(challenge).to.include({ type: 'auth', reasonCode: ReasonCode.ContinueAuthentication })
    peer.send({ type: 'auth', reasonCode: ReasonCode.ContinueAuthentication, properties: { ...method, authenticationData: Buffer.from('second') } })
    expect(await peer.next()).to.include({ type: 'connack', reasonCode: 0 })
    peer.send({ type: 'auth', reasonCode: ReasonCode.ReAuthenticate, properties: { ...method, authenticationData: Buffer.from('again') } })
    expect(await peer.next()).to.include({ type: 'auth', reasonCode: ReasonCode.Success })

    expect(seen).to.have.length(3)
    const local = `127.0.0.1:${socket.localPort}`
    for (const credentials of seen) expect(credentials.connection).to.deep.equal({ transport: 'tcp', remoteAddress: local, listener: 'edge' })
    expect(seen[2]!.reauthentication).to.equal(true)

    const connected = events.find((e) => e.type === 'client.connected')
    expect(connected).to.deep.include({ listener: 'edge' })
    expect(connected).to.not.have.property('certificateSubject')
    const disconnected = new Promise<BrokerEvent>((resolve) => broker.events$.subscribe((e) => e.type === 'client.disconnected' && resolve(e)))
    peer.destroy()
    expect(await disconnected).to.deep.include({ listener: 'edge', reason: 'socket' })
  })
})
