import { expect } from 'chai'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { UsageError } from '../../lib/config/cli.js'
import { ConfigError } from '../../lib/config/errors.js'
import { maskSecrets, maskUrl } from '../../lib/config/effective.js'
import { resolveConfig } from '../../lib/config/resolve.js'
import type { ResolvedConfig } from '../../lib/config/resolve.js'

describe('config – file, flags, environment and checks', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mqtt-config-'))
    await writeFile(join(dir, 'server.key'), 'not really a key')
    await writeFile(join(dir, 'server.crt'), 'not really a certificate')
  })
  after(() => rm(dir, { recursive: true, force: true }))

  async function resolveWith(text: string | undefined, argv: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ResolvedConfig> {
    const args = [...argv]
    if (text !== undefined) {
      await writeFile(join(dir, 'broker.yaml'), text)
      args.unshift('--config', 'broker.yaml')
    }
    return resolveConfig({ argv: args, env, cwd: dir })
  }

  async function problems(text: string | undefined, argv: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string[]> {
    try {
      await resolveWith(text, argv, env)
    } catch (error) {
      if (error instanceof ConfigError) return error.message.split('\n')
      throw error
    }
    throw new Error('no ConfigError')
  }

  it('without a file: one tcp listener on 127.0.0.1:1883 and every default', async () => {
    const { config } = await resolveWith(undefined)
    expect(config.listeners).to.deep.equal([
      { name: 'mqtt', kind: 'tcp', host: '127.0.0.1', port: 1883, proxy_protocol: false, proxy_timeout: 5000, trusted_proxies: [] }
    ])
    expect(config.allow_anonymous).to.equal(false)
    expect(config.shutdown_timeout).to.equal(5)
    expect(config.backend).to.deep.include({ type: 'memory' })
    expect(config.backend!.memory).to.include({ max_queued_messages: 1000, max_retained_bytes: 256 * 1024 * 1024 })
    expect(config.broker!.inflight_window).to.equal(500)
  })

  it('flags override the file: --port and --host the first tcp listener, --ws-port the first ws one', async () => {
    const text = 'listeners:\n  - { name: edge, kind: tcp, port: 1884 }\n  - { name: web, kind: ws, port: 8081 }\nbroker:\n  topic_alias_maximum: 3\n'
    const { config } = await resolveWith(text, ['--port', '2883', '--ws-port', '9090', '--topic-alias-maximum', '7', '--log-level', 'warn'])
    expect(config.listeners!.map((l) => [l.name, (l as { port: number }).port])).to.deep.equal([
      ['edge', 2883],
      ['web', 9090]
    ])
    expect(config.broker!.topic_alias_maximum).to.equal(7)
    expect(config.log!.level).to.equal('warn')
  })

  it('--port adds a tcp listener when the file has none', async () => {
    const { config } = await resolveWith('listeners:\n  - { name: web, kind: ws, port: 8081 }\n', ['--port', '2884'])
    expect(config.listeners!.map((l) => `${l.name}:${l.kind}:${(l as { port: number }).port}`)).to.deep.equal(['web:ws:8081', 'mqtt:tcp:2884'])
  })

  it('a file that is not a map, or listeners that are not a list, are reported (flags do not hide them)', async () => {
    expect(await problems('- a\n- b\n', ['--port', '1'])).to.deep.equal(['broker.yaml:1:1: expected a map of keys, got a list'])
    expect(await problems('listeners: none\n', ['--port', '1', '--ws-port', '2'])).to.deep.equal(['broker.yaml:1:12: listeners: expected a list, got "none"'])
  })

  it('environment variables override file and flags; an empty one is ignored', async () => {
    const text = 'backend:\n  type: redis\n  redis:\n    url: redis://file:6379\n    node_id: from-file\nlog:\n  level: info\n'
    const { config } = await resolveWith(text, ['--node-id', 'from-flag', '--redis', 'redis://flag:6379'], {
      MQTT_BROKER_REDIS_URL: 'redis://env:6379',
      MQTT_BROKER_NODE_ID: 'from-env',
      MQTT_BROKER_LOG_LEVEL: '',
      MQTT_BROKER_LOG_FORMAT: 'json'
    })
    expect(config.backend!.redis!.url).to.equal('redis://env:6379')
    expect(config.backend!.redis!.node_id).to.equal('from-env')
    expect(config.log).to.deep.equal({ level: 'info', format: 'json' })
  })

  it('MQTT_BROKER_TLS_PASSPHRASE sets every TLS listener; _<NAME> one listener', async () => {
    const text = [
      'listeners:',
      '  - { name: a-1, kind: tls, port: 8883, tls: { key: server.key, cert: server.crt, passphrase: in-file } }',
      '  - { name: b, kind: wss, port: 8443, tls: { key: server.key, cert: server.crt } }'
    ].join('\n')
    const { config } = await resolveWith(text, [], { MQTT_BROKER_TLS_PASSPHRASE: 'all', MQTT_BROKER_TLS_PASSPHRASE_A_1: 'only-a' })
    const passphrases = config.listeners!.map((l) => (l as { tls: { passphrase?: string } }).tls.passphrase)
    expect(passphrases).to.deep.equal(['only-a', 'all'])
  })

  it('MQTT_BROKER_HTTP_TLS_PASSPHRASE sets http.tls.passphrase, else MQTT_BROKER_TLS_PASSPHRASE does; nothing without http.tls', async () => {
    const text = 'http:\n  port: 8443\n  tls: { key: server.key, cert: server.crt, passphrase: in-file }\n'
    const own = await resolveWith(text, [], { MQTT_BROKER_HTTP_TLS_PASSPHRASE: 'http-only', MQTT_BROKER_TLS_PASSPHRASE: 'all' })
    expect(own.config.http!.tls!.passphrase).to.equal('http-only')
    const all = await resolveWith(text, [], { MQTT_BROKER_TLS_PASSPHRASE: 'all' })
    expect(all.config.http!.tls!.passphrase).to.equal('all')
    expect((await resolveWith(text, [], { MQTT_BROKER_HTTP_TLS_PASSPHRASE: '' })).config.http!.tls!.passphrase).to.equal('in-file')
    const plain = await resolveWith('http:\n  port: 8080\n', [], { MQTT_BROKER_HTTP_TLS_PASSPHRASE: 'x' })
    expect(plain.config.http!.tls).to.equal(undefined)
  })

  it('a bad value from a flag or the environment is reported at the flag or variable', async () => {
    expect(await problems(undefined, ['--node-id', 'a b', '--redis', 'redis://x:1'])).to.deep.equal([
      '--node-id: backend.redis.node_id: expected a node id without spaces or braces, got "a b"'
    ])
    expect(await problems(undefined, [], { MQTT_BROKER_LOG_FORMAT: 'xml' })).to.deep.equal([
      'MQTT_BROKER_LOG_FORMAT: log.format: expected one of: text, json, got "xml"'
    ])
  })

  it('every limit flag sets its key, over the file; queued/retained follow the backend', async () => {
    const flags: Record<string, string> = {
      'max-connect-packet-size': 'max_connect_packet_size', 'connect-timeout': 'connect_timeout', 'max-keepalive': 'max_keepalive',
      'receive-maximum': 'receive_maximum', 'inflight-window': 'inflight_window', 'max-outgoing-queue': 'max_outgoing_queue',
      'max-outgoing-queue-bytes': 'max_outgoing_queue_bytes', 'max-buffered-bytes': 'max_buffered_bytes',
      'max-publisher-pause': 'max_publisher_pause', 'send-timeout': 'send_timeout', 'max-topic-length': 'max_topic_length',
      'max-topic-levels': 'max_topic_levels', 'max-subscriptions': 'max_subscriptions', 'max-connections': 'max_connections',
      'max-connections-per-listener': 'max_connections_per_listener', 'max-connections-per-address': 'max_connections_per_address',
      'max-connect-rate-per-address': 'max_connect_rate_per_address', 'max-user-properties': 'max_user_properties',
      'persistent-session-expiry': 'persistent_session_expiry', 'max-heap-used': 'max_heap_used', 'max-event-loop-lag': 'max_event_loop_lag',
      'max-connections-per-tenant': 'max_connections_per_tenant', 'flapping-max-count': 'flapping_max_count',
      'flapping-window': 'flapping_window', 'flapping-ban-time': 'flapping_ban_time'
    }
    const argv = Object.keys(flags).flatMap((flag, i) => [`--${flag}`, String(100 + i)])
    argv.push('--max-queued-messages', '7', '--max-queued-bytes', '8', '--max-retained-messages', '9', '--max-retained-bytes', '10')
    const { config } = await resolveWith('broker:\n  max_connections: 3\n  send_timeout: 5\n', argv)
    for (const [i, key] of Object.values(flags).entries()) expect(config.broker![key as 'max_connections'], key).to.equal(100 + i)
    expect(config.backend!.memory).to.include({ max_queued_messages: 7, max_queued_bytes: 8, max_retained_messages: 9, max_retained_bytes: 10 })
    const redis = await resolveWith(undefined, ['--redis', 'redis://x:1', '--max-queued-messages', '7', '--max-retained-messages', '9', '--max-queued-bytes', '8', '--max-retained-bytes', '10'])
    expect(redis.config.backend!.redis).to.include({ max_queued_messages: 7, max_retained_messages: 9, max_queued_bytes: 8, max_retained_bytes: 10 })
    expect(redis.config.backend!.memory).to.equal(undefined)
    expect(await problems(undefined, ['--max-topic-levels', '0'])).to.deep.equal(['--max-topic-levels: broker.max_topic_levels: expected an integer from 1 to 65535, got 0'])
    expect(await problems('backend:\n  type: redis\n  redis: { url: "redis://x:1" }\n  memory: { max_queued_messages: 5 }\n')).to.have.length(1)
  })

  it('a malformed flag is a usage error', async () => {
    for (const argv of [['--port', 'x'], ['--bogus'], ['--max-connections', '-1'], ['--send-timeout', '1.5'], ['--tenant', 'a', '--tenant-by', 'username'], ['--log-format', 'xml']]) {
      let error: unknown
      try {
        await resolveWith(undefined, argv)
      } catch (e) {
        error = e
      }
      expect(error, argv.join(' ')).to.be.instanceOf(UsageError)
    }
  })

  it('relative file paths are relative to the configuration file', async () => {
    const { config } = await resolveWith('listeners:\n  - { name: s, kind: tls, port: 8883, tls: { key: server.key, cert: ./server.crt } }\n  - { name: u, kind: unix, path: m.sock }\n')
    expect((config.listeners![0] as { tls: { key: string; cert: string } }).tls).to.include({ key: join(dir, 'server.key'), cert: join(dir, 'server.crt') })
    expect((config.listeners![1] as { path: string }).path).to.equal(join(dir, 'm.sock'))
  })

  describe('checks before anything starts', () => {
    const table: { what: string; text: string; argv?: string[]; expected: string }[] = [
      {
        what: 'a missing certificate file',
        text: 'listeners:\n  - name: secure\n    kind: tls\n    tls:\n      key: server.key\n      cert: missing.crt\n',
        expected: `broker.yaml:6:13: listeners[0].tls.cert: listener "secure": cannot read "${'DIR'}/missing.crt": ENOENT`
      },
      {
        what: 'two listeners on one port',
        text: 'listeners:\n  - { name: a, kind: tcp, port: 1884 }\n  - { name: b, kind: ws, port: 1884 }\n',
        expected: 'broker.yaml:3:32: listeners[1].port: listener "b": port 1884 is also used by listeners[0] "a" (tcp on 127.0.0.1)'
      },
      {
        what: 'two listeners on one port, one on every interface',
        text: 'allow_anonymous: true\nlisteners:\n  - { name: a, kind: tcp, host: 0.0.0.0, port: 1884 }\n  - { name: b, kind: tcp, port: 1884 }\n',
        expected: 'broker.yaml:4:33: listeners[1].port: listener "b": port 1884 is also used by listeners[0] "a" (tcp on 0.0.0.0)'
      },
      {
        what: 'two listeners with one name',
        text: 'listeners:\n  - { name: a, kind: tcp, port: 1884 }\n  - { name: a, kind: tcp, port: 1885 }\n',
        expected: 'broker.yaml:3:13: listeners[1].name: "a" is already the name of listeners[0]'
      },
      {
        what: 'PROXY protocol without trusted proxies',
        text: 'listeners:\n  - { name: a, kind: tcp, proxy_protocol: true }\n',
        expected: 'broker.yaml:2:43: listeners[0].proxy_protocol: needs trusted_proxies'
      },
      {
        what: 'a trusted proxy that is no address',
        text: 'listeners:\n  - { name: a, kind: ws, trusted_proxies: [lb.example] }\n',
        expected: 'broker.yaml:2:43: listeners[0].trusted_proxies: trusted proxy "lb.example" is not an IP address or CIDR range'
      },
      {
        what: 'client certificates without a CA',
        text: 'listeners:\n  - name: s\n    kind: tls\n    tls: { key: server.key, cert: server.crt, client_certificates: required }\n',
        expected: 'broker.yaml:4:68: listeners[0].tls.client_certificates: "required" needs tls.ca'
      },
      {
        what: 'a redis backend without URL',
        text: 'backend:\n  type: redis\n',
        expected: 'broker.yaml:2:3: backend.redis: the redis backend needs url'
      },
      {
        what: 'redis settings with the memory backend',
        text: 'backend:\n  redis:\n    prefix: x\n',
        expected: 'broker.yaml:3:13: backend.redis.prefix: only used with the redis backend'
      },
      {
        what: 'tenancy by listener naming no listener',
        text: 'listeners:\n  - { name: a, kind: tcp }\ntenancy:\n  by: listener\n  listeners: { b: acme }\n',
        expected: 'broker.yaml:5:19: tenancy.listeners.b: no listener is named "b"'
      },
      {
        what: 'anonymous access on a network address from the file',
        text: 'listeners:\n  - { name: public, kind: tcp, host: 0.0.0.0 }\n',
        expected: 'broker.yaml:2:38: listeners[0].host: listener "public" would accept anonymous clients from the network on 0.0.0.0: no authentication method is configured. Configure one under auth: (password_file, jwt, http or redis), or allow anonymous access explicitly with allow_anonymous: true (--allow-anonymous)'
      },
      {
        what: 'anonymous access on a network address from --host',
        text: 'listeners:\n  - { name: public, kind: tcp }\n',
        argv: ['--host', '192.0.2.1'],
        expected: '--host: listeners[0].host: listener "public" would accept anonymous clients from the network on 192.0.2.1'
      },
      {
        what: 'HTTP beyond loopback without credentials',
        text: 'http:\n  host: 0.0.0.0\n',
        expected: 'broker.yaml:2:9: http.host: the HTTP endpoints (management API, metrics, dashboard) would be served on 0.0.0.0 without credentials'
      },
      {
        what: 'HTTP mounted on a network ws listener without credentials',
        text: 'allow_anonymous: true\nlisteners:\n  - { name: web, kind: ws, host: 0.0.0.0 }\nhttp:\n  listener: web\n',
        expected: 'broker.yaml:5:13: http.listener: the HTTP endpoints (management API, metrics, dashboard) would be served on 0.0.0.0'
      },
      {
        what: 'HTTP mounted on no ws listener',
        text: 'listeners:\n  - { name: a, kind: tcp }\nhttp:\n  listener: a\n',
        expected: 'broker.yaml:4:13: http.listener: listener "a" is tcp: the HTTP endpoints mount on a ws or wss listener'
      },
      {
        what: 'HTTP on an MQTT listener\'s port',
        text: 'listeners:\n  - { name: a, kind: tcp, port: 1883 }\nhttp:\n  port: 1883\n',
        expected: 'broker.yaml:4:9: http.port: port 1883 is also used by listeners[0] "a"'
      },
      {
        what: 'a missing HTTP TLS file',
        text: 'http:\n  tls: { key: nope.key, cert: server.crt }\n',
        expected: 'broker.yaml:2:15: http.tls.key: cannot read "DIR/nope.key": ENOENT'
      }
    ]
    for (const { what, text, argv, expected } of table) {
      it(`stops on ${what}, naming the place`, async () => {
        const lines = await problems(text, argv)
        const want = expected.replace('DIR', dir)
        expect(lines.some((line) => line.startsWith(want)), `${lines.join('\n')}\n  should contain a line starting with\n${want}`).to.equal(true)
      })
    }

    it('loopback, Unix sockets, allow_anonymous and an auth section need no more', async () => {
      await writeFile(join(dir, 'users.txt'), '')
      await resolveWith('listeners:\n  - { name: a, kind: tcp, host: localhost }\n  - { name: b, kind: ws, host: "::1" }\n  - { name: c, kind: unix, path: m.sock }\n')
      await resolveWith('listeners:\n  - { name: a, kind: tcp, host: 0.0.0.0 }\n', ['--allow-anonymous'])
      await resolveWith('allow_anonymous: true\nlisteners:\n  - { name: a, kind: tcp, host: 0.0.0.0 }\n')
      await resolveWith('auth:\n  password_file: users.txt\nlisteners:\n  - { name: a, kind: tcp, host: 0.0.0.0 }\n')
      await resolveWith('auth:\n  jwt: { secret: "0123456789abcdef0123" }\nlisteners:\n  - { name: a, kind: tcp, host: 0.0.0.0 }\n')
      await resolveWith('auth:\n  allow_anonymous: true\n  acl: [{ filter: "#", access: read }]\nlisteners:\n  - { name: a, kind: tcp, host: 0.0.0.0 }\n')
      await resolveWith('allow_anonymous: true\nhttp:\n  host: 0.0.0.0\n  auth: { tokens: ["0123456789abcdef"] }\n')
      await resolveWith('allow_anonymous: true\nhttp:\n  host: 0.0.0.0\n  allow_anonymous: true\n')
    })

    it('WebSocket listeners on one port with different paths share it', async () => {
      await resolveWith('listeners:\n  - { name: a, kind: ws, port: 8081, path: /mqtt }\n  - { name: b, kind: ws, port: 8081, path: /other }\n')
      expect(await problems('listeners:\n  - { name: a, kind: ws, port: 8081 }\n  - { name: b, kind: ws, port: 8081 }\n')).to.deep.equal([
        'broker.yaml:3:5: listeners[1].path: listener "b": path /mqtt on port 8081 is also listeners[0] "a"\'s'
      ])
    })
  })

  describe('masking secrets', () => {
    it('masks passphrases, passwords, tokens and URL passwords', () => {
      const masked = maskSecrets({
        listeners: [{ name: 's', kind: 'tls', tls: { key: 'k', cert: 'c', passphrase: 'hunter2' } }],
        backend: { type: 'redis', redis: { url: 'redis://user:pw@host:6379/0' } },
        auth: { jwt: { secret: 'jwt-secret-value' }, http: { url: 'http://h/', headers: { authorization: 'Bearer hook-token' } }, redis: { url: 'redis://:rpw@h:1' } },
        http: { auth: { tokens: ['http-token-0123456789'], users: [{ username: 'ops', password: 'p' }] } }
      })
      const text = JSON.stringify(masked)
      for (const secret of ['hunter2', ':pw@', '"p"', 'jwt-secret-value', 'hook-token', 'rpw', 'http-token-0123456789']) expect(text).not.to.include(secret)
      expect(text).to.include('"username":"ops"')
      expect(masked.backend!.redis!.url).to.equal('redis://user:********@host:6379/0')
      expect((masked.listeners![0] as { tls: { key: string } }).tls.key).to.equal('k')
      expect(maskUrl('redis://onlypassword@host:6379')).to.equal('redis://********@host:6379')
      expect(maskUrl('redis://host:6379')).to.equal('redis://host:6379')
    })
  })
})
