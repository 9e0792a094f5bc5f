import { expect } from 'chai'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import type { ClientHandle, SetupResult } from '../../lib/backend/backend.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Teardown } from '../helpers/teardown.js'

/** A MemoryBackend whose sessions of client "bad" throw an unexpected error when saving a delivery. */
class FaultyBackend extends MemoryBackend {
  override setup(client: ClientHandle, clean: boolean, expiryInterval: number): SetupResult {
    const result = super.setup(client, clean, expiryInterval)
    if (client.clientId === 'bad') {
      result.session.saveOutgoing = () => {
        throw new TypeError('a bug in a session')
      }
    }
    return result
  }
}

async function peer(teardown: Teardown, port: number, clientId: string): Promise<Peer> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => resolve(s))
    s.once('error', reject)
  })
  teardown.add(socket, (s) => s.destroy())
  socket.on('error', () => undefined)
  const p = new Peer({ stream: socket })
  expect(await p.connect({ clientId, protocolLevel: 5 })).to.deep.include({ reasonCode: 0 })
  return p
}

describe('broker – an unexpected error closes only its own connection', function () {
  this.timeout(10000)
  const teardown = useTeardown()

  it('a receiver whose delivery throws is closed with 0x83; the publisher and other receivers go on', async () => {
    const broker = makeBroker(teardown, { backend: new FaultyBackend() })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const bad = await peer(teardown, port, 'bad')
    const good = await peer(teardown, port, 'good')
    for (const p of [bad, good]) {
      p.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 1 }] })
      expect((await p.next()).type).to.equal('suback')
    }
    const publisher = await peer(teardown, port, 'publisher')
    publisher.send(publish('t', 'hello', 1, 7))
    expect(await publisher.next()).to.deep.include({ type: 'puback', packetId: 7 })
    expect(await good.next()).to.deep.include({ type: 'publish', topic: 't' })
    // Its PUBLISH was written before the session failed; then the DISCONNECT.
    let last = await bad.next()
    while (last.type === 'publish') last = await bad.next()
    expect(last).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ImplementationSpecificError })
    await bad.waitClosed()
    expect(broker.stats.internalErrors).to.equal(1)
    publisher.send({ type: 'pingreq' })
    expect(await publisher.next()).to.deep.equal({ type: 'pingresp' })
  })
})
