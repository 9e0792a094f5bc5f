import { expect } from 'chai'
import { ConfigError } from '../../lib/config/errors.js'
import { loadConfigText } from '../../lib/config/load.js'

/** The issue lines `loadConfigText` throws for `text`. */
function issues(text: string, file = 'broker.yaml'): string[] {
  try {
    loadConfigText(text, file)
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError)
    return (error as Error).message.split('\n')
  }
  throw new Error('no ConfigError')
}

describe('config – loading a file', () => {
  it('reads YAML and JSON into the same configuration', () => {
    const yaml = loadConfigText('listeners:\n  - name: mqtt\n    kind: tcp\n    port: 1884\nallow_anonymous: false\n', 'a.yaml')
    const json = loadConfigText('{"listeners": [{"name": "mqtt", "kind": "tcp", "port": 1884}], "allow_anonymous": false}', 'a.json')
    expect(yaml).to.deep.equal(json)
    expect(yaml).to.deep.equal({ listeners: [{ name: 'mqtt', kind: 'tcp', port: 1884 }], allow_anonymous: false })
  })

  it('an empty file is an empty configuration', () => {
    expect(loadConfigText('', 'empty.yaml')).to.deep.equal({})
    expect(loadConfigText('# only a comment\n', 'empty.yaml')).to.deep.equal({})
  })

  const table: { what: string; text: string; expected: string[] }[] = [
    {
      what: 'a syntax error',
      text: 'log:\n  level: info: debug\n',
      expected: ['broker.yaml:2:10: syntax error: Nested mappings are not allowed in compact mappings']
    },
    {
      what: 'a duplicate key',
      text: 'log:\n  level: info\n  level: debug\n',
      expected: ['broker.yaml:3:3: syntax error: Map keys must be unique']
    },
    {
      what: 'an unknown top-level key, at the key',
      text: 'listeners:\n  - name: a\n    kind: tcp\nlisteners_extra: 1\n',
      expected: ['broker.yaml:4:1: listeners_extra: unknown key (expected one of: listeners, allow_anonymous, auth,']
    },
    {
      what: 'an unknown key in a listener',
      text: 'listeners:\n  - name: a\n    kind: tcp\n    prot: 1883\n',
      expected: ['broker.yaml:4:5: listeners[0].prot: unknown key (expected one of: name, kind, host, port, proxy_protocol']
    },
    {
      what: 'a wrong type',
      text: 'broker:\n  receive_maximum: lots\n',
      expected: ['broker.yaml:2:20: broker.receive_maximum: expected an integer, got "lots"']
    },
    {
      what: 'an out-of-range value',
      text: 'listeners:\n  - name: a\n    kind: tcp\n    port: 70000\n',
      expected: ['broker.yaml:4:11: listeners[0].port: expected an integer from 0 to 65535, got 70000']
    },
    {
      what: 'a value not in the list',
      text: 'broker:\n  maximum_qos: 3\n',
      expected: ['broker.yaml:2:16: broker.maximum_qos: expected one of: 0, 1, 2, got 3']
    },
    {
      what: 'an unknown listener kind',
      text: 'listeners:\n  - name: a\n    kind: quic\n',
      expected: ['broker.yaml:3:11: listeners[0].kind: expected one of: tcp, tls, ws, wss, unix, got "quic"']
    },
    {
      what: 'a tls listener without tls',
      text: 'listeners:\n  - name: a\n    kind: tls\n',
      expected: ['broker.yaml:2:5: listeners[0]: missing key "tls"']
    },
    {
      what: 'a key of another kind (path on tcp)',
      text: 'listeners:\n  - name: a\n    kind: tcp\n    path: /mqtt\n',
      expected: ['broker.yaml:4:5: listeners[0].path: unknown key']
    },
    {
      what: 'a bad pattern, described',
      text: 'backend:\n  type: redis\n  redis:\n    url: http://127.0.0.1:6379\n',
      expected: ['broker.yaml:4:10: backend.redis.url: expected a redis:// or rediss:// URL, got "http://127.0.0.1:6379"']
    },
    {
      what: 'a JSON file, with positions too',
      text: '{\n  "listeners": [\n    { "name": "a", "kind": "tcp", "port": -1 }\n  ]\n}\n',
      expected: ['broker.yaml:3:43: listeners[0].port: expected an integer from 0 to 65535, got -1']
    },
    {
      what: 'several problems at once',
      text: 'broker:\n  inflight_window: 0\n  maximum_qos: 5\nshutdown_timeout: forever\n',
      expected: [
        'broker.yaml:2:20: broker.inflight_window: expected an integer from 1 to 65535, got 0',
        'broker.yaml:3:16: broker.maximum_qos: expected one of: 0, 1, 2, got 5',
        'broker.yaml:4:19: shutdown_timeout: expected a number, got "forever"'
      ]
    }
  ]
  for (const { what, text, expected } of table) {
    it(`reports ${what} with file:line:col, the key and what was expected`, () => {
      const lines = issues(text)
      expect(lines).to.have.length(expected.length, lines.join('\n'))
      expected.forEach((prefix, i) => expect(lines[i]!.startsWith(prefix), `${lines[i]!}\n  should start with\n${prefix}`).to.equal(true))
    })
  }

  it('accepts every kind of listener with all its keys', () => {
    const config = loadConfigText(
      [
        'listeners:',
        '  - { name: t, kind: tcp, host: 0.0.0.0, port: 1883, proxy_protocol: true, proxy_timeout: 3000, trusted_proxies: [10.0.0.0/8] }',
        '  - name: s',
        '    kind: tls',
        '    port: 8883',
        '    tls: { key: k.pem, cert: c.pem, ca: ca.pem, passphrase: x, client_certificates: required, username_from: cn, min_version: TLSv1.3, ciphers: HIGH, watch: false, handshake_timeout: 5000 }',
        '  - { name: w, kind: ws, port: 8080, path: /mqtt, trusted_proxies: ["::1"] }',
        '  - { name: ws2, kind: wss, port: 8443, path: /m, tls: { key: k.pem, cert: c.pem } }',
        '  - { name: u, kind: unix, path: /tmp/m.sock, mode: "0660" }'
      ].join('\n'),
      'all.yaml'
    )
    expect(config.listeners!.map((l) => l.kind)).to.deep.equal(['tcp', 'tls', 'ws', 'wss', 'unix'])
  })
})
