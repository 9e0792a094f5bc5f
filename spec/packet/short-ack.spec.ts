import { expect } from 'chai'
import { decodeAck, decodeShortAck } from '../../lib/packet/ack.js'
import type { AckType } from '../../lib/packet/ack.js'
import { decodeAll, ProtocolError, ReasonCode } from '../../lib/packet/index.js'
import { Reader } from '../../lib/packet/reader.js'

const TYPES: [AckType, number][] = [['puback', 0x40], ['pubrec', 0x50], ['pubrel', 0x62], ['pubcomp', 0x70]]

describe('packet – acknowledgements of a packet id alone (decodeShortAck)', () => {
  for (const [type, first] of TYPES) {
    for (const level of [3, 4, 5] as const) {
      it(`decodes a 2-byte ${type.toUpperCase()} at level ${level} to what the Reader-based decode gives`, () => {
        for (const id of [1, 0x1234, 0xffff]) {
          const body = Buffer.from([0xaa, id >> 8, id & 0xff, 0xbb])
          const short = decodeShortAck(type, body, 1)
          expect(short).to.deep.equal(decodeAck(type, new Reader(body, 1, 3), level))
          expect(Object.keys(short)).to.deep.equal(['type', 'packetId'])
          // Through the decoder (which takes this path for every 2-byte body).
          expect(decodeAll(Buffer.from([first, 2, id >> 8, id & 0xff]), { protocolLevel: level }).packets).to.deep.equal([short])
        }
      })
    }

    it(`refuses ${type.toUpperCase()} packet identifier 0 with a protocol error (0x82), as the Reader-based decode does`, () => {
      const zero = Buffer.from([0, 0])
      expect(() => decodeShortAck(type, zero, 0)).to.throw(ProtocolError, /packet identifier 0/)
      expect(() => decodeAck(type, new Reader(zero, 0, 2), 4)).to.throw(ProtocolError, /packet identifier 0/)
      const { packets, error } = decodeAll(Buffer.from([first, 2, 0, 0]), { protocolLevel: 4 })
      expect(packets).to.deep.equal([])
      expect(error).to.be.instanceOf(ProtocolError)
      expect(error!.reasonCode).to.equal(ReasonCode.ProtocolError)
    })
  }
})
