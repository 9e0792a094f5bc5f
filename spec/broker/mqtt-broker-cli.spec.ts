import { expect } from 'chai'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { parse as parseYaml } from 'yaml'
import { Peer } from '../helpers/flow.js'
import { startBroker, waitForOutput } from '../helpers/broker-process.js'
import type { BrokerProcess as Run } from '../helpers/broker-process.js'
import { useTeardown } from '../helpers/teardown.js'
import { connect as tcpConnect } from 'node:net'
import { ENVIRONMENT } from '../../lib/config/cli.js'
import type { Duplex } from 'node:stream'

function start(args: string[], env?: NodeJS.ProcessEnv): Run {
  return startBroker(args, { env })
}

function waitFor(run: Run, pattern: RegExp, timeout = 15000): Promise<RegExpMatchArray> {
  return waitForOutput(run, pattern, timeout)
}

describe('bin/mqtt-broker', function () {
  this.timeout(30000)
  const teardown = useTeardown()

  function track(run: Run): Run {
    teardown.defer(() => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
    })
    return run
  }

  it('listens on the given port, serves MQTT, and exits 0 on SIGTERM', async () => {
    const run = track(start(['--port', '0', '--log-level', 'warn']))
    const match = await waitFor(run, /mqtt-broker listening on tcp:\/\/127\.0\.0\.1:(\d+)/)
    const port = Number(match[1])
    const stream = await new Promise<Duplex>((resolve, reject) => {
      const socket = tcpConnect({ host: '127.0.0.1', port }, () => resolve(socket))
      socket.once('error', reject)
    })
    const peer = new Peer({ stream })
    expect(await peer.connect({ clientId: 'cli' })).to.deep.equal({ type: 'connack', sessionPresent: false, reasonCode: 0 })
    peer.destroy()
    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
  })

  it('--topic-alias-maximum and --max-session-expiry reach MQTT 5 clients in CONNACK', async () => {
    const run = track(start(['--port', '0', '--topic-alias-maximum', '5', '--max-session-expiry', '60']))
    const match = await waitFor(run, /mqtt-broker listening on tcp:\/\/127\.0\.0\.1:(\d+)/)
    const stream = await new Promise<Duplex>((resolve, reject) => {
      const socket = tcpConnect({ host: '127.0.0.1', port: Number(match[1]) }, () => resolve(socket))
      socket.once('error', reject)
    })
    const peer = new Peer({ stream })
    expect(
      await peer.connect({ clientId: 'cli', protocolLevel: 5, keepalive: 60, properties: { sessionExpiryInterval: 3600 } })
    ).to.deep.equal({
      type: 'connack',
      sessionPresent: false,
      reasonCode: 0,
      // The default maximum packet size (4 MiB) is told too.
      properties: { sessionExpiryInterval: 60, topicAliasMaximum: 5, maximumPacketSize: 4 * 1024 * 1024 }
    })
    peer.destroy()
    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
    const bad = track(start(['--topic-alias-maximum', '70000']))
    expect(await bad.exit).to.equal(2)
    expect(bad.stderr).to.match(/--topic-alias-maximum/)
  })

  it('limit flags reach the engine: --max-connections 1 refuses a second client with 0x97, --max-topic-levels 2 a deep topic', async () => {
    const run = track(start(['--port', '0', '--max-connections', '1', '--max-topic-levels', '2']))
    const match = await waitFor(run, /mqtt-broker listening on tcp:\/\/127\.0\.0\.1:(\d+)/)
    const url = `mqtt://127.0.0.1:${match[1]}`
    const first = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: 'one', reconnectPeriod: 0 })
    teardown.defer(() => first.endAsync(true))
    const code = await new Promise<number | undefined>((resolve) => {
      const second = mqtt.connect(url, { protocolVersion: 5, clientId: 'two', reconnectPeriod: 0 })
      teardown.defer(() => second.endAsync(true))
      second.once('connect', () => resolve(0))
      second.once('error', (error: Error & { code?: number }) => resolve(error.code))
    })
    expect(code).to.equal(0x97)
    const granted = await new Promise<number[]>((resolve) => {
      first.once('packetreceive', (packet) => resolve([...((packet as { granted?: number[] }).granted ?? [])]))
      first.subscribe(['a/b/c'], { qos: 0 }, () => undefined)
    })
    expect(granted).to.deep.equal([0x8f])
    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
  })

  it('--sys-interval: the $SYS topics every N seconds; a bad value exits 2', async () => {
    const run = track(start(['--port', '0', '--sys-interval', '1']))
    const match = await waitFor(run, /mqtt-broker listening on tcp:\/\/127\.0\.0\.1:(\d+)/)
    const stream = await new Promise<Duplex>((resolve, reject) => {
      const socket = tcpConnect({ host: '127.0.0.1', port: Number(match[1]) }, () => resolve(socket))
      socket.once('error', reject)
    })
    const peer = new Peer({ stream })
    await peer.connect({ clientId: 'sys' })
    peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '$SYS/broker/clients/connected', qos: 0 }] })
    expect(await peer.next()).to.deep.include({ type: 'suback' })
    const p = await peer.next(3000)
    expect(p).to.deep.include({ type: 'publish', topic: '$SYS/broker/clients/connected' })
    expect((p as { payload: Buffer }).payload.toString()).to.equal('1')
    peer.destroy()
    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
    const bad = track(start(['--sys-interval', 'often']))
    expect(await bad.exit).to.equal(2)
    expect(bad.stderr).to.match(/--sys-interval/)
  })

  it('also listens for WebSocket with --ws-port, and exits 0 on SIGINT', async () => {
    const run = track(start(['--port', '0', '--ws-port', '0']))
    await waitFor(run, /listening on ws:\/\/127\.0\.0\.1:\d+\/mqtt/)
    run.child.kill('SIGINT')
    expect(await run.exit).to.equal(0)
  })

  it('--help prints usage and exits 0', async () => {
    const run = track(start(['--help']))
    expect(await run.exit).to.equal(0)
    expect(run.stdout).to.match(/Usage: mqtt-broker/)
    // Every environment variable it reads, with the key it sets.
    for (const name of Object.keys(ENVIRONMENT)) expect(run.stdout).to.include(`  ${name}: `)
  })

  it('an unknown flag stops it with a message and exit code 2', async () => {
    const run = track(start(['--bogus']))
    expect(await run.exit).to.equal(2)
    expect(run.stderr).to.match(/bogus/)
  })

  it('a bad value stops it with a message and exit code 2', async () => {
    const run = track(start(['--port', 'abc']))
    expect(await run.exit).to.equal(2)
    expect(run.stderr).to.match(/--port must be an integer/)
    const level = track(start(['--log-level', 'loud']))
    expect(await level.exit).to.equal(2)
    expect(level.stderr).to.match(/--log-level/)
  })

  it('a port in use stops it with a clear message and exit code 1', async () => {
    const blocker: Server = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    teardown.defer(() => new Promise((resolve) => blocker.close(resolve)))
    const port = (blocker.address() as { port: number }).port
    const run = track(start(['--port', String(port)]))
    expect(await run.exit).to.equal(1)
    expect(run.stderr).to.match(/address already in use/)
  })

  describe('with a configuration file', () => {
    let dir: string
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'mqtt-broker-cli-'))
      await writeFile(join(dir, 'server.key'), 'key')
      await writeFile(join(dir, 'server.crt'), 'cert')
    })
    after(() => rm(dir, { recursive: true, force: true }))

    async function file(name: string, text: string): Promise<string> {
      const path = join(dir, name)
      await writeFile(path, text)
      return path
    }

    const broken: { what: string; text: string; place: RegExp }[] = [
      { what: 'a syntax error', text: 'listeners:\n  - name: a\n    kind: tcp\n   port: 1\n', place: /broken\.yaml:4:\d+: syntax error/ },
      { what: 'an unknown key', text: 'listeners:\n  - { name: a, kind: tcp, port: 0 }\nbrokr:\n  inflight_window: 5\n', place: /broken\.yaml:3:1: brokr: unknown key/ },
      { what: 'a wrong type', text: 'listeners:\n  - { name: a, kind: tcp, port: zero }\n', place: /broken\.yaml:2:33: listeners\[0\]\.port: expected an integer, got "zero"/ },
      { what: 'a value out of range', text: 'broker:\n  receive_maximum: 70000\n', place: /broken\.yaml:2:20: broker\.receive_maximum: expected an integer from 1 to 65535, got 70000/ },
      {
        what: 'a missing certificate file',
        text: 'listeners:\n  - { name: a, kind: tcp, port: 0 }\n  - name: s\n    kind: tls\n    port: 0\n    tls: { key: server.key, cert: nowhere.crt }\n',
        place: /broken\.yaml:6:35: listeners\[1\]\.tls\.cert: listener "s": cannot read ".*nowhere\.crt": ENOENT/
      },
      {
        what: 'two listeners on one port',
        text: 'listeners:\n  - { name: a, kind: tcp, port: 1999 }\n  - { name: b, kind: tls, port: 1999, tls: { key: server.key, cert: server.crt } }\n',
        place: /broken\.yaml:3:33: listeners\[1\]\.port: listener "b": port 1999 is also used by listeners\[0\] "a"/
      },
      {
        what: 'anonymous access on a network address',
        text: 'listeners:\n  - { name: lan, kind: tcp, host: 0.0.0.0, port: 0 }\n',
        place: /broken\.yaml:2:35: listeners\[0\]\.host: listener "lan" would accept anonymous clients from the network on 0\.0\.0\.0.*allow_anonymous: true \(--allow-anonymous\)/
      }
    ]
    for (const { what, text, place } of broken) {
      it(`stops on ${what}: exit 2, the place named, nothing started`, async () => {
        const run = track(start(['--config', await file('broken.yaml', text)]))
        expect(await run.exit).to.equal(2)
        expect(run.stderr).to.match(/nothing was started/)
        expect(run.stderr).to.match(place)
        expect(run.stdout).to.not.include('listening')
      })
    }

    it('a missing configuration file: exit 2', async () => {
      const run = track(start(['--config', join(dir, 'absent.yaml')]))
      expect(await run.exit).to.equal(2)
      expect(run.stderr).to.match(/absent\.yaml: cannot read the configuration file: no such file/)
    })

    it('--print-config: flags override the file, the environment overrides both, secrets masked', async () => {
      const config = await file(
        'print.yaml',
        [
          'listeners:',
          '  - { name: edge, kind: tcp, port: 1884 }',
          '  - { name: secure, kind: tls, port: 8884, tls: { key: server.key, cert: server.crt, passphrase: file-secret } }',
          'broker:',
          '  inflight_window: 100',
          '  topic_alias_maximum: 2',
          'backend:',
          '  type: redis',
          '  redis: { url: "redis://:file-password@127.0.0.1:6379", node_id: file-node }'
        ].join('\n')
      )
      const run = track(
        start(['--config', config, '--print-config', '--port', '2884', '--topic-alias-maximum', '9', '--node-id', 'flag-node'], {
          MQTT_BROKER_NODE_ID: 'env-node',
          MQTT_BROKER_REDIS_URL: 'redis://admin:env-password@127.0.0.1:6380',
          MQTT_BROKER_TLS_PASSPHRASE_SECURE: 'env-secret'
        })
      )
      expect(await run.exit).to.equal(0)
      for (const secret of ['file-secret', 'env-secret', 'file-password', 'env-password']) expect(run.stdout).to.not.include(secret)
      const printed = parseYaml(run.stdout) as {
        listeners: { name: string; port: number; tls?: { passphrase: string; key: string } }[]
        broker: Record<string, unknown>
        backend: { type: string; redis: Record<string, unknown> }
        log: Record<string, unknown>
      }
      expect(printed.listeners.map((l) => [l.name, l.port])).to.deep.equal([['edge', 2884], ['secure', 8884]])
      expect(printed.listeners[1]!.tls).to.include({ passphrase: '********', key: join(dir, 'server.key') })
      expect(printed.broker).to.include({ inflight_window: 100, topic_alias_maximum: 9, receive_maximum: 65535 })
      expect(printed.backend.redis).to.include({ node_id: 'env-node', url: 'redis://admin:********@127.0.0.1:6380', prefix: 'mq' })
      expect(printed.log).to.deep.equal({ level: 'info', format: 'json' })
    })

    it('--check-config validates and exits 0 without listening', async () => {
      const run = track(start(['--config', await file('ok.json', '{"listeners": [{"name": "a", "kind": "tcp", "port": 1}]}'), '--check-config']))
      expect(await run.exit).to.equal(0)
      expect(run.stdout).to.match(/configuration is valid \(1 listeners\)/)
    })

    it('--host on a network address needs --allow-anonymous, which starts with a warning', async function () {
      this.timeout(45000) // three processes one after the other (15 s timed out on a loaded machine)
      const refused = track(start(['--host', '0.0.0.0', '--port', '0']))
      expect(await refused.exit).to.equal(2)
      expect(refused.stderr).to.match(/--host: listeners\[0\]\.host: listener "mqtt" would accept anonymous clients/)
      // Specs bind loopback only: the network address is checked, not bound.
      const allowed = track(start(['--host', '0.0.0.0', '--port', '0', '--allow-anonymous', '--check-config']))
      expect(await allowed.exit).to.equal(0)
      const run = track(start(['--port', '0', '--allow-anonymous', '--log-format', 'text']))
      await waitFor(run, /listening on tcp:\/\/127\.0\.0\.1:\d+/)
      expect(run.stderr).to.match(/WARN anonymous access allowed \(allow_anonymous\)/)
      run.child.kill('SIGTERM')
      expect(await run.exit).to.equal(0)
    })

    it('log.format json: JSON lines with level, time and message', async () => {
      const run = track(start(['--port', '0', '--log-format', 'json']))
      await waitFor(run, /listening on tcp/)
      run.child.kill('SIGTERM')
      expect(await run.exit).to.equal(0)
      const lines = run.stderr.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
      expect(lines.find((line) => line.msg === 'listening')).to.include({ level: 'info', name: 'mqtt' })
      expect(lines.every((line) => typeof line.time === 'string')).to.equal(true)
    })
  })
})
