import { expect } from 'chai'
import { UsageError, durationMs, parseArgs } from '../../lib/cli/args.js'
import { compileFormat, goQuote } from '../../lib/cli/format.js'
import { buildConfig } from '../../lib/cli/mqttc-config.js'
import { MQTTC_FLAGS } from '../../lib/cli/mqttc-flags.js'

function config(argv: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof buildConfig> {
  return buildConfig(parseArgs(argv, MQTTC_FLAGS), env)
}

describe('mqttc – arguments', () => {
  it('reads both dialects: mqttc single-dash words and mosquitto short flags, --name=value too', () => {
    const a = parseArgs(['-publish', 'a/b', '-tls', '-timeout=2s', '-t', 'x', '--qos=1', 'host:1'], MQTTC_FLAGS)
    expect(a.values.get('publish')).to.equal('a/b')
    expect(a.values.get('tls')).to.equal(true)
    expect(a.values.get('timeout')).to.equal('2s')
    expect(a.values.get('topic')).to.deep.equal(['x'])
    expect(a.values.get('qos')).to.equal('1')
    expect(a.positionals).to.deep.equal(['host:1'])
  })

  it('tells mqttc -topic (a switch) from mosquitto --topic T, and -verbose (progress) from --verbose (-v)', () => {
    const a = parseArgs(['-topic', '--topic', 'x', '-verbose', '--verbose'], MQTTC_FLAGS)
    expect(a.values.get('mqttcTopic')).to.equal(true)
    expect(a.values.get('topic')).to.deep.equal(['x'])
    expect(a.values.get('verbose')).to.equal(true)
    expect(a.values.get('printTopic')).to.equal(true)
  })

  it('refuses unknown flags, bundling and missing values with a UsageError', () => {
    expect(() => parseArgs(['-vN'], MQTTC_FLAGS)).to.throw(UsageError, /unknown flag -vN/)
    expect(() => parseArgs(['-t'], MQTTC_FLAGS)).to.throw(UsageError, /needs a value/)
    expect(() => parseArgs(['-D', 'publish', 'user-property', 'k'], MQTTC_FLAGS)).to.throw(UsageError)
  })

  it('reads Go durations and plain seconds', () => {
    expect(durationMs('4s', 't')).to.equal(4000)
    expect(durationMs('1m30s', 't')).to.equal(90_000)
    expect(durationMs('250ms', 't')).to.equal(250)
    expect(durationMs('0.5', 't')).to.equal(500)
    expect(() => durationMs('4 s', 't')).to.throw(UsageError)
  })

  it('resolves addresses: :port, host:port, URLs, MQTTC_PORT, TLS default port, unix sockets', () => {
    expect(config([':1884']).url).to.equal('mqtt://localhost:1884')
    expect(config(['localhost'], { MQTTC_PORT: '2000' }).url).to.equal('mqtt://localhost:2000')
    expect(config(['-tls', 'q1.example.com']).url).to.equal('mqtts://q1.example.com:8883')
    expect(config(['ws://127.0.0.1:9001/mqtt']).url).to.equal('ws://127.0.0.1:9001/mqtt')
    expect(config(['-net', 'unix', '/tmp/b.sock']).url).to.equal('mqtt+unix:///tmp/b.sock')
    expect(config(['-h', 'b', '-p', '1']).url).to.equal('mqtt://b:1')
  })

  it('chooses the mode: -t is a topic with a payload source, a filter without; -D implies MQTT 5', () => {
    expect(config(['-t', 'a', '-m', 'x']).publish?.topic).to.equal('a')
    expect(config(['-t', 'a', '-t', 'b']).subscribe?.filters.map((f) => f.topicFilter)).to.deep.equal(['a', 'b'])
    expect(config(['-t', 'a', '-m', 'x', '-D', 'publish', 'content-type', 'text/plain']).client.protocolVersion).to.equal(5)
    expect(() => config(['-t', 'a', '-m', 'x', '-V', '311', '-D', 'publish', 'content-type', 't'])).to.throw(UsageError, /need -V 5/)
    expect(() => config(['-t', 'a', '-l', '--session', '/tmp/x'])).to.throw(UsageError, /client id/)
  })
})

describe('mqttc – output formats', () => {
  it('refuses -F specifiers it does not implement rather than printing them', () => {
    expect(() => compileFormat('%m')).to.throw(UsageError, /%m is not supported/)
    expect(() => compileFormat('%5x')).to.throw(UsageError, /field width/)
    expect(() => compileFormat('\\y')).to.throw(UsageError, /escape/)
    expect(() => compileFormat('@Q')).to.throw(UsageError)
  })

  it("quotes like Go's %q", () => {
    expect(goQuote(Buffer.from('a "b"\n\t'))).to.equal('"a \\"b\\"\\n\\t"')
    expect(goQuote(Buffer.from('📥 ok'))).to.equal('"📥 ok"')
    expect(goQuote(Buffer.from([0xff, 0x41]))).to.equal('"\\xffA"')
  })
})
