/**
 * A CONNECT with Clean Session 0 (MQTT 5: Clean Start 0) that takes over a live connection whose
 * session ends with it (Clean Session 1; MQTT 5 Session Expiry 0) must not resume that session:
 * it ended with the connection, so a new one starts and Session Present is 0.
 * 3.1.1 [MQTT-3.1.2-6] "the Session lasts as long as the Network Connection", [MQTT-3.2.2-2];
 * 5.0 section 3.1.2.11.2 (expiry 0: "the Session ends when the Network Connection is closed"),
 * [MQTT-3.2.2-3]. Both backends are held to it by the conformance suite (session-cases.ts).
 */
import { expect } from 'chai'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ProtocolLevel } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connected, publish } from '../helpers/packets.js'
import { hex, RawClient, tcpPeer } from '../helpers/socket.js'
import { useTeardown } from '../helpers/teardown.js'

/** CONNECT, Clean Session 0, keepalive 0, client id "a", per level. */
const RESUMING_CONNECT: Record<ProtocolLevel, Buffer> = {
  3: hex('10 0f | 0006 4d5149736470 | 03 | 00 | 0000 | 0001 61'),
  4: hex('10 0d | 0004 4d515454 | 04 | 00 | 0000 | 0001 61'),
  5: hex('10 0e | 0004 4d515454 | 05 | 00 | 0000 | 00 | 0001 61')
}

/** CONNACK accepted with Session Present 0, per level (MQTT 5: no properties). */
const NEW_SESSION_CONNACK: Record<ProtocolLevel, Buffer> = {
  3: hex('20 02 | 00 | 00'),
  4: hex('20 02 | 00 | 00'),
  5: hex('20 03 | 00 | 00 | 00')
}

describe('edges – taking over a connection whose session ends with it', () => {
  const teardown = useTeardown()

  for (const level of [3, 4, 5] as const) {
    it(`level ${level}: Clean Session 0 after a live Clean Session 1 connection gets a new session, Session Present 0`, async () => {
      const broker = makeBroker(teardown)
      const first = await tcpPeer(teardown, broker, level)
      expect(await first.connect({ protocolLevel: level, clientId: 'a', clean: true })).to.deep.include({ reasonCode: 0 })
      first.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 1 }] })
      expect(await first.next()).to.deep.include({ type: 'suback' })

      const second = await RawClient.open(teardown, broker)
      second.send(RESUMING_CONNECT[level])
      const expected = NEW_SESSION_CONNACK[level]
      expect(await second.read(expected.length)).to.deep.equal(expected)
      // The taken-over connection is closed (MQTT 5: DISCONNECT 0x8E first) [MQTT-3.1.4-3].
      await first.waitClosed(3000)
      const rest = first.takeReceived()
      if (level === 5) expect(rest).to.have.length(1).and.to.have.nested.property('[0].reasonCode', ReasonCode.SessionTakenOver)
      else expect(rest).to.deep.equal([])
      // The old session's subscription is gone with it: nothing reaches the new connection.
      const publisher = await connected(broker, { clientId: 'p' })
      publisher.send(publish('t', 'x', 1, 1))
      expect(await publisher.next()).to.deep.include({ type: 'puback' })
      second.send(hex('c0 00')) // PINGREQ: its PINGRESP is the next thing the broker sends
      expect(await second.read(expected.length + 2)).to.deep.equal(Buffer.concat([expected, hex('d0 00')]))
    })
  }

  it('level 5: Clean Start 0 with Session Expiry 0 ends with the connection too', async () => {
    const broker = makeBroker(teardown)
    const first = await tcpPeer(teardown, broker, 5)
    expect(await first.connect({ protocolLevel: 5, clientId: 'a', clean: false })).to.deep.include({ reasonCode: 0 })
    const second = await RawClient.open(teardown, broker)
    second.send(RESUMING_CONNECT[5])
    expect(await second.read(5)).to.deep.equal(NEW_SESSION_CONNACK[5])
  })

  it('level 4: a persistent session (Clean Session 0) taken over is still resumed, Session Present 1', async () => {
    const broker = makeBroker(teardown)
    const first = await tcpPeer(teardown, broker, 4)
    expect(await first.connect({ protocolLevel: 4, clientId: 'a', clean: false })).to.deep.include({ reasonCode: 0 })
    const second = await RawClient.open(teardown, broker)
    second.send(RESUMING_CONNECT[4])
    expect(await second.read(4)).to.deep.equal(hex('20 02 | 01 | 00'))
  })
})
