/**
 * MQTT 3.1 clients (protocol name "MQIsdp", level 3) against the broker, byte for byte:
 * - CONNACK's first byte is reserved in 3.1 ("Topic Name Compression Response", not used): 0, even
 *   when a session is resumed (Session Present exists from 3.1.1 on [MQTT-3.2.2-1]).
 * - 3.1 sends PUBREL, SUBSCRIBE and UNSUBSCRIBE with QoS 1 and sets DUP when it re-delivers them
 *   (3.1 section 2.1, DUP flag; section 3.6 PUBREL): accepted, so QoS 2 recovery works. From 3.1.1 on these flags are
 *   reserved [MQTT-2.2.2-1] and the connection closes [MQTT-2.2.2-2].
 * - CONNECT's fixed-header flags and connect-flags bit 0 are "not used" in 3.1: ignored; from
 *   3.1.1 on they are reserved [MQTT-2.2.2-2] [MQTT-3.1.2-3].
 */
import { expect } from 'chai'
import { makeBroker } from '../helpers/broker.js'
import { hex, RawClient } from '../helpers/socket.js'
import { useTeardown } from '../helpers/teardown.js'

/** A 3.1 CONNECT: fixed-header byte `first`, connect flags `flags`, keepalive 0, client id "a". */
function connect31(first: number, flags: number): Buffer {
  return Buffer.concat([Buffer.from([first]), hex('0f | 0006 4d5149736470 | 03'), Buffer.from([flags]), hex('0000 | 0001 61')])
}

const CONNACK_ACCEPTED = hex('20 02 00 00')

describe('edges – MQTT 3.1 wire format', () => {
  const teardown = useTeardown()

  it('CONNACK to a 3.1 client resuming its session has byte 1 = 0 (no Session Present in 3.1)', async () => {
    const broker = makeBroker(teardown)
    const first = await RawClient.open(teardown, broker)
    first.send(connect31(0x10, 0x00)) // Clean Session 0: a persistent session
    expect(await first.read(4)).to.deep.equal(CONNACK_ACCEPTED)
    first.send(hex('e0 00')) // DISCONNECT
    await first.waitClosed()
    const second = await RawClient.open(teardown, broker)
    second.send(connect31(0x10, 0x00))
    expect(await second.read(4)).to.deep.equal(CONNACK_ACCEPTED)
  })

  it('3.1: PUBREL, SUBSCRIBE and UNSUBSCRIBE resent with DUP=1 are handled (QoS 2 recovery)', async () => {
    const broker = makeBroker(teardown)
    const client = await RawClient.open(teardown, broker)
    const expected: Buffer[] = [CONNACK_ACCEPTED]
    const step = async (send: string, answer: string): Promise<void> => {
      client.send(hex(send))
      expected.push(hex(answer))
      const all = Buffer.concat(expected)
      expect(await client.read(all.length)).to.deep.equal(all)
    }
    client.send(connect31(0x10, 0x02))
    expect(await client.read(4)).to.deep.equal(CONNACK_ACCEPTED)
    await step('34 06 | 0001 74 | 0001 | 78', '50 02 0001') // PUBLISH QoS 2 "t" id 1 → PUBREC
    await step('62 02 0001', '70 02 0001') // PUBREL → PUBCOMP (the PUBCOMP was lost, say)
    await step('6a 02 0001', '70 02 0001') // PUBREL again, DUP=1 → PUBCOMP again
    await step('8a 06 | 0002 | 0001 74 01', '90 03 0002 01') // SUBSCRIBE, DUP=1 → SUBACK
    await step('aa 05 | 0003 | 0001 74', 'b0 02 0003') // UNSUBSCRIBE, DUP=1 → UNSUBACK
  })

  for (const level of [3, 4] as const) {
    const resent = level === 3 ? '6a 02 0001' : '62 02 0001'
    it(`${level === 3 ? '3.1: the PUBREL resent on resume has DUP=1 (3.1 section 4.2)' : '3.1.1: the PUBREL resent on resume has flags 0010 [MQTT-3.6.1-1]'}`, async () => {
      const broker = makeBroker(teardown)
      const connectBytes = level === 3 ? connect31(0x10, 0x00) : hex('10 0d | 0004 4d515454 | 04 | 00 | 0000 | 0001 61')
      const first = await RawClient.open(teardown, broker)
      first.send(connectBytes)
      expect(await first.read(4)).to.deep.equal(CONNACK_ACCEPTED)
      first.send(hex('82 06 | 0001 | 0001 74 02')) // SUBSCRIBE t QoS 2
      expect(await first.read(9)).to.deep.equal(Buffer.concat([CONNACK_ACCEPTED, hex('90 03 0001 02')]))
      await broker.publish({ topic: 't', payload: 'x', qos: 2 })
      const publish = hex('34 06 | 0001 74 | 0001 | 78')
      expect((await first.read(17)).subarray(9)).to.deep.equal(publish)
      first.send(hex('50 02 0001')) // PUBREC → the broker's first PUBREL, without DUP
      expect((await first.read(21)).subarray(17)).to.deep.equal(hex('62 02 0001'))
      first.socket.destroy() // lost before PUBCOMP
      await first.closed
      const second = await RawClient.open(teardown, broker)
      second.send(connectBytes)
      // 3.1 has no Session Present; 3.1.1 says 1.
      const connack = level === 3 ? CONNACK_ACCEPTED : hex('20 02 01 00')
      expect(await second.read(8)).to.deep.equal(Buffer.concat([connack, hex(resent)]))
    })
  }

  it('3.1.1: a PUBREL with DUP=1 is malformed and closes the connection [MQTT-2.2.2-2]', async () => {
    const broker = makeBroker(teardown)
    const client = await RawClient.open(teardown, broker)
    client.send(hex('10 0d | 0004 4d515454 | 04 | 02 | 0000 | 0001 61'))
    expect(await client.read(4)).to.deep.equal(CONNACK_ACCEPTED)
    client.send(hex('6a 02 0001'))
    await client.waitClosed()
    expect(client.received).to.deep.equal(CONNACK_ACCEPTED)
  })

  for (const [first, flags] of [
    [0x18, 0x02],
    [0x13, 0x02],
    [0x10, 0x03],
    [0x1f, 0x03]
  ] as const) {
    it(`3.1: CONNECT with fixed-header byte 0x${first.toString(16)} and connect flags 0x0${flags} is accepted (bits not used)`, async () => {
      const broker = makeBroker(teardown)
      const client = await RawClient.open(teardown, broker)
      client.send(connect31(first, flags))
      expect(await client.read(4)).to.deep.equal(CONNACK_ACCEPTED)
      client.send(hex('c0 00'))
      expect(await client.read(6)).to.deep.equal(Buffer.concat([CONNACK_ACCEPTED, hex('d0 00')]))
    })
  }

  it('3.1.1: the same bits are reserved: closed without CONNACK [MQTT-2.2.2-2] [MQTT-3.1.2-3]', async () => {
    const broker = makeBroker(teardown)
    for (const bytes of [hex('18 0d | 0004 4d515454 | 04 | 02 | 0000 | 0001 61'), hex('10 0d | 0004 4d515454 | 04 | 03 | 0000 | 0001 61')]) {
      const client = await RawClient.open(teardown, broker)
      client.send(bytes)
      await client.waitClosed()
      expect(client.received).to.have.length(0)
    }
  })
})
