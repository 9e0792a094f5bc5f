import { isUtf8 } from 'node:buffer'

/**
 * Why the UTF-8 string at `buf[start, end)` is not a valid MQTT string, or undefined when it is:
 * well-formed UTF-8 (no overlong forms, no encoded surrogates U+D800..U+DFFF) [MQTT-1.5.4-1] and no
 * U+0000 [MQTT-1.5.4-2]. ASCII is checked inline; anything else by the native validator.
 */
export function utf8Problem(buf: Buffer, start: number, end: number): string | undefined {
  let ascii = true
  for (let i = start; i < end; i++) {
    const byte = buf[i] as number
    if (byte === 0) return 'a UTF-8 string contains U+0000 [MQTT-1.5.4-2]'
    if (byte >= 0x80) ascii = false
  }
  if (ascii) return undefined
  // isUtf8 rejects overlong encodings, surrogates and code points above U+10FFFF.
  if (!isUtf8(buf.subarray(start, end))) return 'a string is not well-formed UTF-8 [MQTT-1.5.4-1]'
  return undefined
}

/** Decode `buf[start, end)`, known to be valid, as a string: latin1 is the fast path for ASCII. */
export function decodeString(buf: Buffer, start: number, end: number): string {
  // Short ASCII strings (most topics and client ids) decode faster through latin1, and latin1 equals
  // UTF-8 for bytes below 0x80.
  for (let i = start; i < end; i++) {
    if ((buf[i] as number) >= 0x80) return buf.toString('utf8', start, end)
  }
  return (buf as FastSlices).latin1Slice(start, end)
}

/** Node's undocumented but stable direct slicers (typed here because @types/node omits them). */
interface FastSlices extends Buffer {
  latin1Slice(start: number, end: number): string
}

/** True when `value` contains U+0000 or a lone surrogate, which MQTT strings must not [MQTT-1.5.4-1]. */
export function stringProblem(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0) return 'contains U+0000'
    if (c >= 0xd800 && c <= 0xdfff) {
      // A high surrogate followed by a low one is a valid pair (a code point above U+FFFF).
      const next = value.charCodeAt(i + 1)
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++
        continue
      }
      return 'contains a lone surrogate'
    }
  }
  return undefined
}
