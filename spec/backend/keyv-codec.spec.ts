import assert from 'node:assert/strict'
import { decodeMessage, decodeOutgoing, decodeQueued, encodeMessage, encodeOutgoing, encodeQueued } from '../../lib/backend/keyv/codec.js'
import type { Message } from '../../lib/session/session.js'

// The Redis backend's binary records: what goes in comes out byte-exact, whichever way the header
// is parsed (plain JSON.parse, or the reviver when it holds a tagged Buffer).
describe('KeyvBackend codec', () => {
  const payload = Buffer.from([0, 0xff, 0xc3, 0x28, 0x0d, 0x0a])

  it('round-trips a message without Buffers in its header', () => {
    const m: Message = { topic: 'a/ü/$b64', payload, qos: 1, retain: true, receivedAt: 1234, origin: 'c-1' }
    assert.deepEqual(decodeMessage(encodeMessage(m)), m)
  })

  it('round-trips Buffer properties (correlation data) and a user property named like the tag', () => {
    const m: Message = {
      topic: 't',
      payload,
      qos: 2,
      retain: false,
      properties: { correlationData: Buffer.from([1, 2, 0xfe]), userProperties: [['$b64', 'x'], ['k', 'v']], contentType: '$b64' }
    }
    const back = decodeMessage(encodeMessage(m))
    assert.deepEqual(back, m)
    assert.ok(Buffer.isBuffer(back.properties?.correlationData))
  })

  it('round-trips a queued message with its subscription', () => {
    const item = { message: { topic: 'q/1', payload: Buffer.alloc(0), qos: 1 as const, retain: false }, subscription: { topicFilter: 'q/+', qos: 1 as const, noLocal: true } }
    assert.deepEqual(decodeQueued(encodeQueued(item)), item)
  })

  it('writes the header JSON.stringify would write, for every kind of record without Buffers', () => {
    const header = (bytes: Buffer): string => bytes.toString('utf8', 5, 5 + bytes.readUInt32BE(1))
    const topic = 'a/"quoted"\\/\u0001/ü/😀'
    const cases: [Buffer, object][] = [
      [encodeMessage({ topic, payload, qos: 0, retain: false }), { t: topic, q: 0, r: false }],
      [encodeMessage({ topic, payload, qos: 2, retain: true, receivedAt: 1.5e12, origin: 'o"1' }), { t: topic, q: 2, r: true, at: 1.5e12, o: 'o"1' }],
      [encodeOutgoing({ kind: 'pubrel', packetId: 7 }), { t: '', q: 0, r: false, k: 'pubrel', id: 7 }],
      [encodeOutgoing({ kind: 'publish', packetId: 65535, message: { topic, payload, qos: 1, retain: false, origin: 'x' } }), { t: topic, q: 1, r: false, o: 'x', k: 'publish', id: 65535 }]
    ]
    for (const [bytes, expected] of cases) assert.equal(header(bytes), JSON.stringify(expected))
    // A time that is no finite number still makes JSON (null), as JSON.stringify does.
    assert.equal(JSON.parse(header(encodeMessage({ topic: 't', payload, qos: 0, retain: false, receivedAt: NaN }))).at, null)
    assert.deepEqual(decodeOutgoing(cases[3]![0]), { kind: 'publish', packetId: 65535, message: { topic, payload, qos: 1, retain: false, origin: 'x' } })
  })

  it('refuses a record too short to hold its header', () => {
    assert.throws(() => decodeMessage(Buffer.from([0, 0])), /too short/)
  })
})
