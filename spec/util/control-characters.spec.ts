import { expect } from 'chai'
import { escapeControlCharacters, hasControlCharacter } from '../../lib/util/control-characters.js'

describe('control characters', () => {
  it('hasControlCharacter: U+0001–U+001F and U+007F–U+009F, not their neighbours', () => {
    for (const c of ['\u0001', '\t', '\n', '\r', '\u001f', '\u007f', '\u0085', '\u009f']) {
      expect(hasControlCharacter(`a${c}b`), JSON.stringify(c)).to.equal(true)
    }
    for (const c of [' ', '~', '\u00a0', 'é', '\u2028', '😀']) {
      expect(hasControlCharacter(`a${c}b`), JSON.stringify(c)).to.equal(false)
    }
  })

  it('escapeControlCharacters writes C0, DEL, C1, U+2028 and U+2029 as \\xNN / \\uNNNN, leaves the rest', () => {
    expect(escapeControlCharacters('a\r\nb\u0000\u007f\u0085\u2028\u2029c')).to.equal('a\\x0d\\x0ab\\x00\\x7f\\x85\\u2028\\u2029c')
    const plain = 'client-1 é 😀 a\\nb'
    expect(escapeControlCharacters(plain)).to.equal(plain)
    // The global regular expression keeps no state between calls.
    expect(escapeControlCharacters('\n')).to.equal('\\x0a')
    expect(escapeControlCharacters('\n')).to.equal('\\x0a')
  })
})
