import { expect } from 'chai'
import { ConnectReturnCode, ReasonCode } from '../../lib/packet/reason-codes.js'
import { makeBroker } from '../helpers/broker.js'
import { publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'

const open = openTcpPeer

/** Keep this process's event loop busy: `ms` of computation every `every` ms, until stopped. */
function busyLoop(ms: number, every: number): () => void {
  const timer = setInterval(() => {
    const end = Date.now() + ms
    while (Date.now() < end) {
      /* blocking on purpose */
    }
  }, every)
  return () => clearInterval(timer)
}

async function waitFor(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('broker – overload protection', function () {
  this.timeout(30000)
  const teardown = useTeardown()

  it('refuses new connections with 0x89 and sheds QoS 0 while the event loop lags, then recovers by itself', async () => {
    const broker = makeBroker(teardown, { maxEventLoopLag: 100, maxHeapUsed: 0, timerInterval: 100 })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const sub = await open(teardown, port)
    expect(await sub.connect({ clientId: 'sub', protocolLevel: 5 })).to.deep.include({ reasonCode: 0 })
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 1 }] })
    expect((await sub.next()).type).to.equal('suback')
    const pub = await open(teardown, port)
    expect(await pub.connect({ clientId: 'pub', protocolLevel: 5 })).to.deep.include({ reasonCode: 0 })

    const stop = busyLoop(400, 50)
    teardown.defer(stop)
    await waitFor(() => broker.stats.overloaded === 1, 10_000)
    const refused = await open(teardown, port)
    expect(await refused.connect({ clientId: 'late', protocolLevel: 5 })).to.deep.include({ reasonCode: ReasonCode.ServerBusy })
    const refused4 = await open(teardown, port)
    expect(await refused4.connect({ clientId: 'late4' })).to.deep.include({ reasonCode: ConnectReturnCode.ServerUnavailable })
    expect(broker.stats.overloadRefusals).to.equal(2)
    // QoS 0 is shed, QoS 1 still delivered.
    pub.send(publish('t', 'zero', 0))
    pub.send(publish('t', 'one', 1, 5))
    const got = await sub.next(10_000)
    expect(got).to.deep.include({ type: 'publish', qos: 1 })
    expect(broker.stats.overloadShed).to.equal(1)
    stop()

    await waitFor(() => broker.stats.overloaded === 0, 10_000)
    const welcome = await open(teardown, port)
    expect(await welcome.connect({ clientId: 'later', protocolLevel: 5 })).to.deep.include({ reasonCode: 0 })
  })
})
