import { expect } from 'chai'
import fc from 'fast-check'
import { ProxyProtocolError, parseProxyHeader } from '../../lib/transport/proxy-protocol.js'

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')

/** A v2 header: command (0 LOCAL, 1 PROXY), family/protocol byte, address block, TLVs. */
function v2(command: number, familyProtocol: number, block: Buffer): Buffer {
  const head = Buffer.alloc(4)
  head[0] = 0x20 | command
  head[1] = familyProtocol
  head.writeUInt16BE(block.length, 2)
  return Buffer.concat([SIGNATURE, head, block])
}

function ipv4Block(source: number[], destination: number[], sourcePort: number, destinationPort: number, tlv = Buffer.alloc(0)): Buffer {
  const block = Buffer.alloc(12)
  Buffer.from(source).copy(block, 0)
  Buffer.from(destination).copy(block, 4)
  block.writeUInt16BE(sourcePort, 8)
  block.writeUInt16BE(destinationPort, 10)
  return Buffer.concat([block, tlv])
}

/** Valid headers and what they say (`source` undefined: the peer's own address stands). */
const VALID: { name: string; bytes: Buffer; source: { address: string; port: number } | undefined }[] = [
  { name: 'v1 TCP4', bytes: Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 51234 1883\r\n'), source: { address: '192.0.2.7', port: 51234 } },
  { name: 'v1 TCP6', bytes: Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 4000 8883\r\n'), source: { address: '2001:db8::7', port: 4000 } },
  { name: 'v1 UNKNOWN', bytes: Buffer.from('PROXY UNKNOWN\r\n'), source: undefined },
  { name: 'v1 UNKNOWN with addresses', bytes: Buffer.from('PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 65535 65535\r\n'), source: undefined },
  { name: 'v2 PROXY TCP4', bytes: v2(1, 0x11, ipv4Block([198, 51, 100, 9], [10, 0, 0, 1], 40000, 1883)), source: { address: '198.51.100.9', port: 40000 } },
  {
    name: 'v2 PROXY TCP4 with a TLV',
    bytes: v2(1, 0x11, ipv4Block([203, 0, 113, 5], [10, 0, 0, 1], 1, 1883, Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]))),
    source: { address: '203.0.113.5', port: 1 }
  },
  {
    name: 'v2 PROXY TCP6',
    bytes: v2(
      1,
      0x21,
      Buffer.concat([Buffer.from('20010db8000000000000000000000007', 'hex'), Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from([0x1f, 0x40, 0x07, 0x5b])])
    ),
    source: { address: '2001:db8::7', port: 8000 }
  },
  { name: 'v2 LOCAL (health check)', bytes: v2(0, 0x00, Buffer.alloc(0)), source: undefined },
  { name: 'v2 PROXY UNSPEC', bytes: v2(1, 0x00, Buffer.alloc(0)), source: undefined }
]

const MALFORMED: { name: string; bytes: Buffer }[] = [
  { name: 'plain MQTT CONNECT', bytes: Buffer.from('101000044d5154540402003c0004abcd', 'hex') },
  { name: 'v1 lowercase', bytes: Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n') },
  { name: 'v1 unknown protocol', bytes: Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n') },
  { name: 'v1 IPv6 address under TCP4', bytes: Buffer.from('PROXY TCP4 ::1 5.6.7.8 1 2\r\n') },
  { name: 'v1 bad address', bytes: Buffer.from('PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n') },
  { name: 'v1 port out of range', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n') },
  { name: 'v1 port with leading zero', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n') },
  { name: 'v1 missing field', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n') },
  { name: 'v1 double space', bytes: Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n') },
  { name: 'v1 longer than 107 bytes', bytes: Buffer.from(`PROXY UNKNOWN ${'x'.repeat(100)}\r\n`) },
  { name: 'v1 without CRLF within 107 bytes', bytes: Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`) },
  { name: 'v2 bad signature', bytes: Buffer.from('0d0a0d0a000d0a515549540b21110000', 'hex') },
  { name: 'v2 version 1', bytes: Buffer.concat([SIGNATURE, Buffer.from([0x11, 0x11, 0x00, 0x00])]) },
  { name: 'v2 command 2', bytes: Buffer.concat([SIGNATURE, Buffer.from([0x22, 0x11, 0x00, 0x00])]) },
  { name: 'v2 family 4', bytes: v2(1, 0x41, Buffer.alloc(12)) },
  { name: 'v2 IPv4 block too short', bytes: v2(1, 0x11, Buffer.alloc(8)) },
  { name: 'v2 IPv6 block too short', bytes: v2(1, 0x21, Buffer.alloc(12)) }
]

/** Feed `bytes` in the given chunk lengths, as a socket would. */
function feed(bytes: Buffer, cuts: number[]): ReturnType<typeof parseProxyHeader> {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  for (const point of points) {
    const header = parseProxyHeader(bytes.subarray(0, point))
    if (header !== undefined) return header
  }
  return parseProxyHeader(bytes)
}

describe('transport – PROXY protocol parser', () => {
  for (const { name, bytes, source } of VALID) {
    it(`parses ${name}, the bytes after it left alone`, () => {
      const trailing = Buffer.from([0x10, 0x0c, 0x00])
      const header = parseProxyHeader(Buffer.concat([bytes, trailing]))
      expect(header?.length).to.equal(bytes.length)
      expect(header?.source).to.deep.equal(source)
    })

    it(`${name}: asks for more bytes at every cut before its end, then parses it`, () => {
      for (let cut = 0; cut < bytes.length; cut++) expect(parseProxyHeader(bytes.subarray(0, cut))).to.equal(undefined)
      expect(parseProxyHeader(bytes)?.length).to.equal(bytes.length)
    })
  }

  for (const { name, bytes } of MALFORMED) {
    it(`refuses ${name} with ProxyProtocolError`, () => {
      expect(() => parseProxyHeader(bytes)).to.throw(ProxyProtocolError)
    })
  }

  it('refuses a non-header as soon as its first bytes cannot begin one', () => {
    expect(() => parseProxyHeader(Buffer.from('PROXX'))).to.throw(ProxyProtocolError)
    expect(() => parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0e]))).to.throw(ProxyProtocolError)
  })

  it('random bytes give a header, "more bytes" or ProxyProtocolError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), fc.boolean(), (random, v1, v2Prefix) => {
        const prefix = v1 ? Buffer.from('PROXY ') : v2Prefix ? SIGNATURE : Buffer.alloc(0)
        const bytes = Buffer.concat([prefix, Buffer.from(random)])
        try {
          const header = parseProxyHeader(bytes)
          if (header !== undefined) expect(header.length).to.be.within(1, bytes.length)
        } catch (error) {
          if (!(error instanceof ProxyProtocolError)) throw error
        }
      }),
      { numRuns: 2000 }
    )
  })

  it('valid headers split anywhere parse the same', () => {
    fc.assert(
      fc.property(fc.constantFrom(...VALID), fc.array(fc.nat(), { maxLength: 6 }), (vector, cuts) => {
        expect(feed(vector.bytes, cuts)?.source).to.deep.equal(vector.source)
      })
    )
  })
})
