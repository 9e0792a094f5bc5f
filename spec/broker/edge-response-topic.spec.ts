/**
 * MQTT 5: "The Response Topic MUST NOT contain wildcard characters" [MQTT-3.3.2-14] — it is the
 * topic name a responder publishes to, and no one can publish to `+` or `#`. The packet is well
 * formed but not allowed: Protocol Error 0x82 (MQTT 5.0 4.13). A PUBLISH gets DISCONNECT 0x82;
 * a will (3.1.3.2.5, used the same way) gets CONNACK 0x82 and the connection closes
 * [MQTT-4.13.1-1]; nothing is forwarded.
 */
import { expect } from 'chai'
import type { PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { hex, RawClient } from '../helpers/socket.js'
import { useTeardown } from '../helpers/teardown.js'

const CONNECT_V5 = hex('10 0e | 0004 4d515454 | 05 | 02 | 0000 | 00 | 0001 61')
const CONNACK_V5 = hex('20 03 00 00 00')
const DISCONNECT_PROTOCOL_ERROR = hex('e0 01 82')

/** PUBLISH "t", payload "x", with Response Topic (0x08) `responseTopic`; QoS 1 with packet id 1. */
function publishWithResponseTopic(responseTopic: string, qos: 0 | 1): Buffer {
  const rt = Buffer.from(responseTopic)
  const properties = Buffer.concat([hex('08'), Buffer.from([0, rt.length]), rt])
  const body = Buffer.concat([hex('0001 74'), qos === 1 ? hex('0001') : hex(''), Buffer.from([properties.length]), properties, hex('78')])
  return Buffer.concat([Buffer.from([0x30 | (qos << 1), body.length]), body])
}

describe('edges – Response Topic with wildcards [MQTT-3.3.2-14]', () => {
  const teardown = useTeardown()

  for (const [responseTopic, qos] of [
    ['r/+', 0],
    ['r/#', 1],
    ['+', 1]
  ] as const) {
    it(`PUBLISH QoS ${qos} with Response Topic ${JSON.stringify(responseTopic)}: DISCONNECT 0x82, not forwarded`, async () => {
      const broker = makeBroker(teardown)
      const watcher = await connected(broker, { clientId: 'watcher', protocolLevel: 5 })
      await subscribe(watcher, [{ topicFilter: 't', qos: 0 }])
      const client = await RawClient.open(teardown, broker)
      client.send(CONNECT_V5)
      expect(await client.read(5)).to.deep.equal(CONNACK_V5)
      client.send(publishWithResponseTopic(responseTopic, qos))
      await client.waitClosed()
      expect(client.received).to.deep.equal(Buffer.concat([CONNACK_V5, DISCONNECT_PROTOCOL_ERROR]))
      const marker = await connected(broker, { clientId: 'marker' })
      marker.send(publish('t', 'marker'))
      expect(((await watcher.next()) as PublishPacket).payload.toString()).to.equal('marker')
    })
  }

  it('a Response Topic without wildcards is forwarded', async () => {
    const broker = makeBroker(teardown)
    const watcher = await connected(broker, { clientId: 'watcher', protocolLevel: 5 })
    await subscribe(watcher, [{ topicFilter: 't', qos: 0 }])
    const client = await RawClient.open(teardown, broker)
    client.send(CONNECT_V5)
    expect(await client.read(5)).to.deep.equal(CONNACK_V5)
    client.send(publishWithResponseTopic('r/1', 0))
    const got = (await watcher.next()) as PublishPacket
    expect(got.properties?.responseTopic).to.equal('r/1')
  })

  it('a will with Response Topic "r/#": CONNACK 0x82 and close', async () => {
    const broker = makeBroker(teardown)
    const client = await RawClient.open(teardown, broker)
    // Will flag + clean start; will properties: Response Topic "r/#"; will topic "w", payload "x".
    client.send(hex('10 1b | 0004 4d515454 | 05 | 06 | 0000 | 00 | 0001 61 | 06 08 0003 722f23 | 0001 77 | 0001 78'))
    await client.waitClosed()
    expect(client.received).to.deep.equal(hex('20 03 00 82 00'))
  })
})
