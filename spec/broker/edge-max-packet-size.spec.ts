/**
 * MQTT 5: "The Server MUST NOT send packets exceeding Maximum Packet Size to the Client"
 * [MQTT-3.1.2-24], and a CONNACK cannot be discarded like a PUBLISH [MQTT-3.1.2-25]: when even the
 * CONNACK without Reason String and User Properties ([MQTT-3.2.2-19] [MQTT-3.2.2-20]) does not fit,
 * the broker closes the connection without CONNACK instead of leaving it open, unacknowledged,
 * until keepalive (forever with keepalive 0). The will is not published: the CONNECT was never
 * accepted.
 */
import { expect } from 'chai'
import type { PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { hex, RawClient } from '../helpers/socket.js'
import { useTeardown } from '../helpers/teardown.js'

/** MQTT 5 CONNECT, clean start, keepalive 0, Maximum Packet Size (0x27) `max`, then `rest`. */
function connectWithMaximum(max: number, rest: string, flags = 0x02): Buffer {
  const size = Buffer.alloc(4)
  size.writeUInt32BE(max)
  const body = Buffer.concat([hex('0004 4d515454 | 05'), Buffer.from([flags]), hex('0000 | 05 27'), size, hex(rest)])
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}

describe('edges – client Maximum Packet Size too small for the CONNACK', () => {
  const teardown = useTeardown()

  it('Maximum Packet Size 4 (a CONNACK is 5 bytes): closed without CONNACK', async () => {
    const broker = makeBroker(teardown)
    const client = await RawClient.open(teardown, broker)
    client.send(connectWithMaximum(4, '0001 61'))
    await client.waitClosed()
    expect(client.received).to.have.length(0)
  })

  it('Maximum Packet Size 5: the 5-byte CONNACK is sent', async () => {
    const broker = makeBroker(teardown)
    const client = await RawClient.open(teardown, broker)
    client.send(connectWithMaximum(5, '0001 61'))
    expect(await client.read(5)).to.deep.equal(hex('20 03 00 00 00'))
  })

  it('a CONNACK that must carry an Assigned Client Identifier too large for the client: closed without CONNACK', async () => {
    const broker = makeBroker(teardown)
    const client = await RawClient.open(teardown, broker)
    client.send(connectWithMaximum(10, '0000')) // empty client id: the broker assigns one [MQTT-3.2.2-16]
    await client.waitClosed()
    expect(client.received).to.have.length(0)
  })

  it('the will of a connection closed that way is not published', async () => {
    const broker = makeBroker(teardown)
    const watcher = await connected(broker, { clientId: 'watcher' })
    await subscribe(watcher, [{ topicFilter: 'w', qos: 0 }])
    const client = await RawClient.open(teardown, broker)
    // Will flag + clean start; will properties none, will topic "w", will payload "x".
    client.send(connectWithMaximum(4, '0001 61 | 00 | 0001 77 | 0001 78', 0x06))
    await client.waitClosed()
    // A marker published after the close is the first thing the watcher gets.
    const marker = await connected(broker, { clientId: 'marker' })
    marker.send(publish('w', 'marker'))
    const got = (await watcher.next()) as PublishPacket
    expect(got.payload.toString()).to.equal('marker')
  })
})
