import { expect } from 'chai'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { Will } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Broker } from '../../lib/broker/broker.js'
import type { Peer } from '../helpers/flow.js'
import { ended, sentinelNext } from '../helpers/events.js'
import { VirtualClock } from '../helpers/virtual-clock.js'

const will = (extra: Partial<Will> = {}): Will => ({ topic: 'will/c', payload: Buffer.from('gone'), qos: 0, retain: false, ...extra })

async function watcher(broker: Broker, level: 4 | 5 = 4): Promise<Peer> {
  const peer = await connected(broker, { clientId: 'watcher', protocolLevel: level })
  await subscribe(peer, [{ topicFilter: 'will/#', qos: 1 }])
  return peer
}

describe('broker – wills', () => {
  const teardown = useTeardown()

  it('publishes the will when the connection is lost [MQTT-3.1.2-8]', async () => {
    const broker = makeBroker(teardown)
    const w = await watcher(broker)
    const c = await connected(broker, { clientId: 'c', will: will() })
    c.destroy()
    expect(await w.next()).to.deep.equal(publish('will/c', 'gone'))
  })

  it('does not publish the will after DISCONNECT [MQTT-3.1.2-10]', async () => {
    const broker = makeBroker(teardown)
    const w = await watcher(broker)
    const c = await connected(broker, { clientId: 'c', will: will() })
    const done = ended(broker, 'c')
    c.send({ type: 'disconnect' })
    await c.waitClosed()
    await done
    await sentinelNext(broker, w, 'will/c')
  })

  it('MQTT 5: DISCONNECT 0x04 publishes the will', async () => {
    const broker = makeBroker(teardown)
    const w = await watcher(broker)
    const c = await connected(broker, { clientId: 'c', protocolLevel: 5, will: will() })
    c.send({ type: 'disconnect', reasonCode: ReasonCode.DisconnectWithWillMessage })
    expect(await w.next()).to.deep.equal(publish('will/c', 'gone'))
  })

  it('publishes the will on a protocol error', async () => {
    const broker = makeBroker(teardown)
    const w = await watcher(broker)
    const c = await connected(broker, { clientId: 'c', will: will() })
    c.send({ type: 'connect', protocolLevel: 4, clean: true, keepalive: 0, clientId: 'c' })
    expect(await w.next()).to.deep.equal(publish('will/c', 'gone'))
  })

  it('publishes the will on keepalive timeout [MQTT-3.1.2-24]', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 50, clock })
    const w = await watcher(broker)
    const c = await connected(broker, { clientId: 'c', keepalive: 1, will: will() })
    await clock.advance(1450)
    expect(broker.connectedClients.map((client) => client.clientId)).to.deep.equal(['watcher', 'c'])
    await clock.advance(150)
    await c.waitClosed()
    expect(await w.next()).to.deep.equal(publish('will/c', 'gone'))
  })

  it('a retained will is stored as retained', async () => {
    const broker = makeBroker(teardown)
    const c = await connected(broker, { clientId: 'c', will: will({ retain: true }) })
    const done = ended(broker, 'c')
    c.destroy()
    await c.waitClosed()
    await done
    const late = await connected(broker, { clientId: 'late' })
    await subscribe(late, [{ topicFilter: 'will/#', qos: 0 }])
    expect(await late.next()).to.deep.equal(publish('will/c', 'gone', 0, undefined, { retain: true }))
  })

  it('publishes the will at its QoS', async () => {
    const broker = makeBroker(teardown)
    const w = await watcher(broker)
    const c = await connected(broker, { clientId: 'c', will: will({ qos: 1 }) })
    c.destroy()
    expect(await w.next()).to.deep.include({ topic: 'will/c', qos: 1 })
  })
})
