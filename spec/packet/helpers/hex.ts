/**
 * The annotated-bytes notation of the golden fixtures.
 *
 * `hex` is a template tag that turns hand-written, commented bytes into a Buffer:
 *
 * ```ts
 * hex`40 03  # PUBACK, remaining length 3
 *     00 01  # packet id 1
 *     10     # reason code: no matching subscribers`
 * ```
 *
 * Tokens, in any mix:
 * - hex digits, in pairs (`0a`, `FF`), optionally run together (`0001`); an odd count is an error;
 * - a double-quoted ASCII string (`"MQTT"`), whose characters are written as their byte values
 *   (only printable ASCII, so that what is read is exactly what is written; no `"` inside);
 * - `#` starts a comment that runs to the end of the line (a `#` inside a quoted string is a
 *   character, not a comment);
 * - an interpolated `${buffer}` (a Buffer or Uint8Array), copied in as is: used for long payloads.
 *
 * Anything else throws when the fixture module loads, so a typo in a fixture fails loudly.
 */
export function hex(strings: TemplateStringsArray, ...values: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = []
  strings.forEach((text, index) => {
    parts.push(parseAnnotated(text))
    const value = values[index]
    if (index < values.length) {
      if (!(value instanceof Uint8Array)) throw new TypeError('hex: only Buffers may be interpolated')
      parts.push(Buffer.from(value))
    }
  })
  return Buffer.concat(parts)
}

/** Parses one literal piece of a `hex` template (see `hex` for the notation). */
export function parseAnnotated(text: string): Buffer {
  const bytes: number[] = []
  let digits = ''
  let i = 0
  const flushDigits = (): void => {
    if (digits.length % 2 !== 0) throw new SyntaxError(`hex: odd number of hex digits in "${digits}"`)
    for (let d = 0; d < digits.length; d += 2) bytes.push(parseInt(digits.slice(d, d + 2), 16))
    digits = ''
  }
  while (i < text.length) {
    const ch = text[i] as string
    if (/[0-9a-fA-F]/.test(ch)) {
      digits += ch
      i++
      continue
    }
    flushDigits()
    if (ch === '#') {
      const end = text.indexOf('\n', i)
      i = end === -1 ? text.length : end + 1
    } else if (ch === '"') {
      const end = text.indexOf('"', i + 1)
      if (end === -1) throw new SyntaxError('hex: unterminated quoted string')
      for (const c of text.slice(i + 1, end)) {
        const code = c.charCodeAt(0)
        if (code < 0x20 || code > 0x7e) throw new SyntaxError(`hex: non-ASCII character in "${c}"`)
        bytes.push(code)
      }
      i = end + 1
    } else if (/\s/.test(ch)) {
      i++
    } else {
      throw new SyntaxError(`hex: unexpected character "${ch}"`)
    }
  }
  flushDigits()
  return Buffer.from(bytes)
}

/** `count` bytes of `value`: filler for payloads whose content does not matter. */
export function filler(count: number, value = 0x61): Buffer {
  return Buffer.alloc(count, value)
}

/** The 256 byte values 0x00..0xFF in order. */
export function everyByte(): Buffer {
  const bytes = Buffer.alloc(256)
  for (let i = 0; i < 256; i++) bytes[i] = i
  return bytes
}
