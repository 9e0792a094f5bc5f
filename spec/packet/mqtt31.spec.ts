/**
 * MQTT 3.1 wire details the decoder and encoder know by protocol level (MQTT 3.1, IBM/Eurotech 2010):
 * - CONNACK's first byte is reserved ("Topic Name Compression Response – reserved, not used"):
 *   sent as 0 and ignored at level 3; 3.1.1 made its bit 0 Session Present [MQTT-3.2.2-1].
 * - PUBREL, SUBSCRIBE and UNSUBSCRIBE have QoS 1 and set DUP when resent: flags 0b1010 are valid
 *   at level 3; 3.1.1 and 5.0 require exactly 0b0010 [MQTT-2.2.2-1] [MQTT-2.2.2-2].
 * - CONNECT's fixed-header flags and connect-flags bit 0 are "not used" in 3.1: ignored at level
 *   3; reserved and checked from 3.1.1 on [MQTT-2.2.2-1] [MQTT-3.1.2-3].
 */
import { expect } from 'chai'
import { decodeAll, encode, MalformedPacketError } from '../../lib/packet/index.js'
import type { ProtocolLevel } from '../../lib/packet/index.js'
import { hex } from './helpers/hex.js'

describe('packet codec – MQTT 3.1 reserved and "not used" bits', () => {
  it('CONNACK at level 3 is encoded with byte 1 = 0 even for a resumed session', () => {
    expect(encode({ type: 'connack', sessionPresent: true, reasonCode: 0 }, 3)).to.deep.equal(hex`20 02 00 00`)
    expect(encode({ type: 'connack', sessionPresent: true, reasonCode: 0 }, 4)).to.deep.equal(hex`20 02 01 00`)
  })

  it('CONNACK at level 3 ignores its reserved byte', () => {
    expect(decodeAll(hex`20 02 05 00`, { protocolLevel: 3 })).to.deep.equal({
      packets: [{ type: 'connack', sessionPresent: false, reasonCode: 0 }]
    })
    expect(decodeAll(hex`20 02 05 00`, { protocolLevel: 4 }).error).to.be.instanceOf(MalformedPacketError)
  })

  const resent: [string, Buffer, unknown][] = [
    ['PUBREL', hex`6A 02 00 01`, { type: 'pubrel', packetId: 1 }],
    ['SUBSCRIBE', hex`8A 06 00 02 00 01 "t" 01`, { type: 'subscribe', packetId: 2, subscriptions: [{ topicFilter: 't', qos: 1 }] }],
    ['UNSUBSCRIBE', hex`AA 05 00 03 00 01 "t"`, { type: 'unsubscribe', packetId: 3, topicFilters: ['t'] }]
  ]
  for (const [name, bytes, packet] of resent) {
    it(`${name} with DUP (flags 1010) decodes at level 3 and is malformed at levels 4 and 5`, () => {
      expect(decodeAll(bytes, { protocolLevel: 3, role: 'server' })).to.deep.equal({ packets: [packet] })
      for (const level of [4, 5] as ProtocolLevel[]) {
        const body = level === 5 && name !== 'PUBREL' ? Buffer.concat([bytes.subarray(0, 4), hex`00`, bytes.subarray(4)]) : bytes
        if (level === 5 && name !== 'PUBREL') body[1]! += 1
        expect(decodeAll(body, { protocolLevel: level, role: 'server' }).error, `level ${level}`).to.be.instanceOf(MalformedPacketError)
      }
    })
  }

  it('CONNECT at level 3 with fixed-header flags and connect-flags bit 0 set decodes', () => {
    for (const first of [0x11, 0x12, 0x18, 0x1f]) {
      const bytes = Buffer.concat([Buffer.from([first]), hex`0F 00 06 "MQIsdp" 03 03 00 3C 00 01 "a"`])
      expect(decodeAll(bytes, { role: 'server' }), `first byte ${first.toString(16)}`).to.deep.equal({
        packets: [{ type: 'connect', protocolName: 'MQIsdp', protocolLevel: 3, clean: true, keepalive: 60, clientId: 'a' }]
      })
    }
  })

  it('CONNECT at levels 4 and 5 with either set is malformed', () => {
    const cases = [
      hex`12 0D 00 04 "MQTT" 04 02 00 3C 00 01 "a"`,
      hex`10 0D 00 04 "MQTT" 04 03 00 3C 00 01 "a"`,
      hex`18 0E 00 04 "MQTT" 05 02 00 3C 00 00 01 "a"`,
      hex`10 0E 00 04 "MQTT" 05 03 00 3C 00 00 01 "a"`
    ]
    for (const bytes of cases) {
      expect(decodeAll(bytes, { role: 'server' }).error, bytes.toString('hex')).to.be.instanceOf(MalformedPacketError)
    }
  })
})
