import { expect } from 'chai'
import fc from 'fast-check'
import { clientLogger, createJsonLogger, createLogger } from '../../lib/broker/logger.js'

/**
 * Client data in log lines (client ids, user names, topics, error messages) is escaped in every
 * format: it can neither break a line nor add a field to it. The text format quotes a value that
 * holds a space, `=`, `"`, `\` or a control character (logfmt: `key="a \"b\""`); the JSON format is
 * JSON, with the characters some line readers take as line breaks (C1, U+2028, U+2029) escaped too.
 */

/** The fields of a text line after its time, level and message: logfmt, unescaped. */
function textFields(line: string): Array<[string, string]> {
  const fields: Array<[string, string]> = []
  const pattern = / ([A-Za-z]\w*)=(?:"((?:[^"\\]|\\.)*)"|([^\s"=\\]+))/gy
  // `TIME LEVEL message`: the message is one word in these specs, the fields start after it.
  pattern.lastIndex = line.indexOf(' ', line.indexOf(' ', line.indexOf(' ') + 1) + 1)
  for (;;) {
    const at = pattern.lastIndex
    const match = pattern.exec(line)
    if (match === null) {
      expect(at, `the whole line is fields: ${JSON.stringify(line)}`).to.equal(line.length)
      return fields
    }
    const quoted = match[2]
    const value =
      quoted === undefined
        ? match[3]!
        : quoted.replace(/\\(x[0-9a-f]{2}|u[0-9a-f]{4}|.)/g, (_, e: string) => (e.length > 1 ? String.fromCharCode(parseInt(e.slice(1), 16)) : e))
    fields.push([match[1]!, value])
  }
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const SAFE_LINE = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$/u

describe('logger – client data cannot forge fields or lines', () => {
  it('text: a client id with `" level=ERROR` and spaces stays one quoted value', () => {
    const lines: string[] = []
    const client = { clientId: 'dev" level=ERROR msg=forged', tenant: 'a b', listener: 'edge' }
    clientLogger(createLogger('info', (line) => lines.push(line)), client).info('closing', { username: 'u=1', topic: '' })
    expect(lines).to.have.length(1)
    expect(lines[0]).to.match(/ INFO closing clientId="dev\\" level=ERROR msg=forged" tenant="a b" listener=edge username="u=1" topic=""$/)
    expect(textFields(lines[0]!)).to.deep.equal([
      ['clientId', 'dev" level=ERROR msg=forged'],
      ['tenant', 'a b'],
      ['listener', 'edge'],
      ['username', 'u=1'],
      ['topic', '']
    ])
  })

  it('text: control characters and backslashes are escaped inside the quotes; errors are values too', () => {
    const lines: string[] = []
    createLogger('info', (line) => lines.push(line)).warn('failed', { clientId: 'a\\x0a\nb', error: new Error('bad "topic" a/b c') })
    expect(lines[0]).to.match(/ WARN failed clientId="a\\\\x0a\\x0ab" error="Error: bad \\"topic\\" a\/b c"$/)
    expect(textFields(lines[0]!)).to.deep.equal([
      ['clientId', 'a\\x0a\nb'],
      ['error', 'Error: bad "topic" a/b c']
    ])
  })

  it('text: Unicode white space (no-break, ideographic, BOM) is quoted, so a reader splitting on \\s sees one field', () => {
    for (const clientId of ['\u00a0', 'a\u3000b', '\u2003', '\ufeff', '\u1680x']) {
      const lines: string[] = []
      createLogger('info', (line) => lines.push(line)).info('connected', { clientId, username: '' })
      expect(lines[0]).to.include(`clientId="${clientId}"`)
      expect(textFields(lines[0]!)).to.deep.equal([
        ['clientId', clientId],
        ['username', '']
      ])
    }
  })

  it('text: any string value round-trips as exactly one field, on one line (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), (clientId, username) => {
        const lines: string[] = []
        createLogger('info', (line) => lines.push(line)).info('connected', { clientId, username })
        expect(lines).to.have.length(1)
        expect(SAFE_LINE.test(lines[0]!), JSON.stringify(lines[0])).to.equal(true)
        expect(textFields(lines[0]!)).to.deep.equal([
          ['clientId', clientId],
          ['username', username]
        ])
      }),
      { numRuns: 500 }
    )
  })

  it('json: C1 controls, U+2028 and U+2029 are escaped (JSON escapes), the value unchanged', () => {
    const lines: string[] = []
    const clientId = 'a\u2028b\u2029c\u0085d\nx" "level":"error'
    createJsonLogger('info', (line) => lines.push(line)).info('connected', { clientId })
    expect(lines).to.have.length(1)
    expect(SAFE_LINE.test(lines[0]!), JSON.stringify(lines[0])).to.equal(true)
    expect(lines[0]).to.include('"clientId":"a\\u2028b\\u2029c\\u0085d\\nx\\" \\"level\\":\\"error"')
    expect(JSON.parse(lines[0]!)).to.include({ level: 'info', clientId })
  })

  it('json: any string value round-trips as one field, and the line has no raw line breaks of any kind (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (clientId) => {
        const lines: string[] = []
        createJsonLogger('info', (line) => lines.push(line)).info('connected', { clientId })
        expect(lines).to.have.length(1)
        expect(SAFE_LINE.test(lines[0]!), JSON.stringify(lines[0])).to.equal(true)
        const parsed = JSON.parse(lines[0]!) as Record<string, unknown>
        expect(parsed).to.include({ level: 'info', msg: 'connected', clientId })
      }),
      { numRuns: 500 }
    )
  })
})
