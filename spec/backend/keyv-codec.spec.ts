import assert from 'node:assert/strict'
import { decodeMessage, decodeQueued, encodeMessage, encodeQueued } from '../../lib/backend/keyv/codec.js'
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

  it('refuses a record too short to hold its header', () => {
    assert.throws(() => decodeMessage(Buffer.from([0, 0])), /too short/)
  })
})
