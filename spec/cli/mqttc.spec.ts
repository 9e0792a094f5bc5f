import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { Aedes } from 'aedes'
import { expect } from 'chai'
import { firstValueFrom, take, toArray } from 'rxjs'
import { Client } from '../../lib/client/index.js'
import type { InboundMessage } from '../../lib/client/index.js'
import type { AuthenticationResult } from '../../lib/backend/backend.js'
import { ReasonCode } from '../../lib/packet/index.js'
import { makeBroker } from '../helpers/broker.js'
import { makeCerts } from '../helpers/certs.js'
import type { TestCerts } from '../helpers/certs.js'
import { useTeardown } from '../helpers/teardown.js'
import { startMosquitto } from '../client/helpers/mosquitto.js'
import { makeCerts as makeClientCerts } from '../client/helpers/certs.js'
import { MQTTC, mqttc, startCli } from './helpers.js'

describe('mqttc – against our broker, as a process', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  let port = 0
  let refusal: AuthenticationResult | undefined
  let dir = ''

  beforeEach(async () => {
    refusal = undefined
    dir = mkdtempSync(join(tmpdir(), 'mqttc-spec-'))
    teardown.defer(() => rmSync(dir, { recursive: true, force: true }))
    const broker = makeBroker(teardown, {
      memory: {
        authenticate: (_client, credentials) => {
          if (refusal !== undefined) return refusal
          if (credentials.username === 'alice' && credentials.password?.toString() !== 'secret') return { result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword }
          return { result: 'allow' }
        }
      }
    })
    port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
  })

  /** Subscribe in-process; `got` resolves with the first `count` messages. */
  async function subscriber(filter: string, count: number, version: 4 | 5 = 4): Promise<{ got: Promise<InboundMessage[]> }> {
    const client = teardown.add(await Client.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: version }), (c) => c.destroy())
    const got = firstValueFrom(client.messages$.pipe(take(count), toArray()))
    await client.subscribe({ topicFilter: filter, qos: 1 })
    return { got }
  }

  async function publish(topic: string, payload: string, options: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    const client = await Client.connect(`mqtt://127.0.0.1:${port}`)
    await client.publish(topic, payload, { qos: options.qos ?? 1, retain: options.retain ?? false })
    await client.end()
  }

  /** A directory with an `mqttc` executable, for running the manual's examples in a shell as written. */
  function pathWithMqttc(): string {
    const bin = join(dir, 'bin')
    const script = join(bin, 'mqttc')
    mkdirSync(bin, { recursive: true })
    writeFileSync(script, `#!/bin/sh\nexec "${process.execPath}" --import tsx "${MQTTC}" "$@"\n`)
    chmodSync(script, 0o755)
    return `${bin}:${process.env.PATH ?? ''}`
  }

  function sh(command: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile('sh', ['-c', command], { env: { ...process.env, ...env }, cwd: process.cwd(), timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr })
      })
    })
  }

  describe("pascaldekloe mqttc's manual examples, as written", () => {
    it('send a message: echo "hello" | mqttc -publish chat/misc localhost (MQTTC_PORT gives the default port)', async () => {
      const { got } = await subscriber('chat/misc', 1)
      const run = await sh('echo "hello" | mqttc -publish chat/misc localhost', { PATH: pathWithMqttc(), MQTTC_PORT: String(port) })
      expect(run.code, run.stderr).to.equal(0)
      const [message] = await got
      expect(message!.payload.toString()).to.equal('hello\n')
    })

    it('print messages: mqttc -subscribe "news/#" -prefix "📥 " :PORT', async () => {
      await publish('news/retained', 'old news', { retain: true })
      const cli = startCli(teardown, MQTTC, ['-subscribe', 'news/#', '-prefix', '📥 ', `:${port}`])
      await cli.waitForStdout(Buffer.byteLength('📥 old news\n'))
      await publish('news/today', 'fresh')
      await cli.waitForStdout(Buffer.byteLength('📥 old news\n📥 fresh\n'))
      cli.child.kill('SIGINT')
      const result = await cli.result
      expect(result.stdout.toString()).to.equal('📥 old news\n📥 fresh\n')
      expect(result.code).to.equal(130)
    })

    describe('health check: mqttc -tls HOST:PORT || echo "exit $?"', () => {
      let certs: TestCerts
      let tls: Server | undefined
      before(async () => {
        certs = await makeCerts()
      })
      after(() => certs.remove())

      it('-cert/-key authenticate to a Mosquitto that requires a client certificate (--cafile, -server)', async () => {
        // The client helpers' certificates: readable by mosquitto after it dropped its privileges.
        const tlsFiles = makeClientCerts()
        teardown.defer(() => tlsFiles.cleanup())
        const mosquitto = await startMosquitto({ tls: { caFile: tlsFiles.caFile, certFile: tlsFiles.certFile, keyFile: tlsFiles.keyFile, requireCertificate: true } })
        teardown.defer(() => mosquitto.stop())
        const address = `127.0.0.1:${mosquitto.tlsPort}`
        const withCert = await mqttc(teardown, ['--cafile', tlsFiles.caFile, '-cert', tlsFiles.clientCertFile, '-key', tlsFiles.clientKeyFile, '-server', 'localhost', address, '-t', 'tls/x', '-m', 'ok'])
        expect(withCert.code, withCert.stderr).to.equal(0)
        const without = await mqttc(teardown, ['--cafile', tlsFiles.caFile, '-server', 'localhost', address])
        expect(without.code).to.equal(1)
        const halfPair = await mqttc(teardown, ['-cert', tlsFiles.clientCertFile, address])
        expect(halfPair.code).to.equal(2)
      })

      it('is silent with status 0 when the broker answers, and prints "exit 1" when it does not', async () => {
        const broker = makeBroker(teardown)
        tls = createTlsServer({ key: certs.server.key, cert: certs.server.cert }, (socket) => broker.handle({ stream: socket, transport: 'tls', remoteAddress: 'tls' }))
        await new Promise<void>((resolve) => tls!.listen(0, '127.0.0.1', resolve))
        const tlsPort = (tls.address() as { port: number }).port
        teardown.add(tls, (server) => new Promise((resolve) => server.close(resolve)))
        // The test CA amends the system roots (what -ca does) through Node's NODE_EXTRA_CA_CERTS.
        const env = { PATH: pathWithMqttc(), NODE_EXTRA_CA_CERTS: certs.ca.certFile }
        const ok = await sh(`mqttc -tls localhost:${tlsPort} || echo "exit $?"`, env)
        expect(ok.stdout + ok.stderr).to.equal('')
        const withCa = await sh(`mqttc -tls -ca ${certs.ca.certFile} localhost:${tlsPort} || echo "exit $?"`, { PATH: env.PATH })
        expect(withCa.stdout + withCa.stderr).to.equal('')
        const untrusted = await sh(`mqttc -tls localhost:${tlsPort} || echo "exit $?"`, { PATH: env.PATH })
        expect(untrusted.stdout).to.equal('exit 1\n')
        const closed = await freeClosedPort()
        const down = await sh(`mqttc -tls localhost:${closed} || echo "exit $?"`, env)
        expect(down.stdout).to.equal('exit 1\n')
      })
    })
  })

  describe('exit statuses, each provoked for real', () => {
    it('0: -C 3 exits after exactly three messages', async () => {
      const cli = startCli(teardown, MQTTC, ['-p', String(port), '-t', 'c/#', '-C', '3', '-v', '-verbose'])
      await cli.waitForStderr(/subscribed/)
      for (const n of [1, 2, 3, 4]) await publish(`c/${n}`, `m${n}`)
      const result = await cli.result
      expect(result.code).to.equal(0)
      expect(result.stdout.toString()).to.equal('c/1 m1\nc/2 m2\nc/3 m3\n')
    })

    it('1: nothing listens on the port', async () => {
      const result = await mqttc(teardown, ['-p', String(await freeClosedPort()), '-t', 'x', '-m', 'y'])
      expect(result.code).to.equal(1)
      expect(result.stderr).to.match(/ECONNREFUSED/)
    })

    it('2: illegal invocations (unknown flag, -t without payload and filter mix-ups, bad -F)', async () => {
      for (const args of [['-bogus'], ['-q', '3', '-t', 'a'], ['-t', 'a', '-m', 'x', '-f', 'y'], ['-t', 'a', '-F', '%Z'], ['-x', '10', '-t', 'a']]) {
        const result = await mqttc(teardown, ['-p', String(port), ...args])
        expect(result.code, args.join(' ')).to.equal(2)
        expect(result.stderr).to.match(/^mqttc: /)
      }
    })

    it('5: a server without MQTT 5 (Aedes) refuses -V 5', async () => {
      const aedes = await Aedes.createBroker()
      const server = createServer(aedes.handle)
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      teardown.add(server, (s) => new Promise<void>((resolve) => aedes.close(() => s.close(() => resolve()))))
      const aedesPort = (server.address() as { port: number }).port
      const v5 = await mqttc(teardown, ['-V', '5', `:${aedesPort}`])
      expect(v5.code, v5.stderr).to.equal(5)
      const v311 = await mqttc(teardown, [`:${aedesPort}`])
      expect(v311.code).to.equal(0)
    })

    it('8: a refused password (from -pass FILE); 0 with the right one', async () => {
      const wrong = join(dir, 'wrong')
      writeFileSync(wrong, 'guess\n')
      const right = join(dir, 'right')
      writeFileSync(right, 'secret\n')
      expect((await mqttc(teardown, ['-user', 'alice', '-pass', wrong, `:${port}`])).code).to.equal(8)
      expect((await mqttc(teardown, ['-user', 'alice', '-pass', wrong, '-V', '5', `:${port}`])).code).to.equal(8)
      expect((await mqttc(teardown, ['-user', 'alice', '-pass', right, `:${port}`])).code).to.equal(0)
    })

    it('6, 7, 9, 10: MQTT 5 CONNACK reason codes mapped onto mqttc statuses', async () => {
      const cases: [number, number][] = [
        [ReasonCode.ClientIdentifierNotValid, 6],
        [ReasonCode.ServerBusy, 7],
        [ReasonCode.NotAuthorized, 9],
        [ReasonCode.Banned, 9],
        [ReasonCode.QuotaExceeded, 10]
      ]
      for (const [reasonCode, status] of cases) {
        refusal = { result: 'deny', reasonCode }
        const result = await mqttc(teardown, ['-V', '5', `:${port}`])
        expect(result.code, `reason 0x${reasonCode.toString(16)}`).to.equal(status)
      }
      refusal = { result: 'deny', reasonCode: ReasonCode.NotAuthorized }
      expect((await mqttc(teardown, ['-V', '311', `:${port}`])).code).to.equal(9)
    })

    it('27: -W 1 passes (as mosquitto_sub)', async () => {
      const result = await mqttc(teardown, ['-p', String(port), '-t', 'quiet/#', '-W', '1'])
      expect(result.code).to.equal(27)
    })

    it('130 on SIGINT: no normal DISCONNECT, so the will is published', async () => {
      const { got: wills } = await subscriber('will/#', 1)
      const cli = startCli(teardown, MQTTC, ['-p', String(port), '-t', 'x', '--will-topic', 'will/a', '--will-payload', 'gone', '-verbose'])
      await cli.waitForStderr(/subscribed/)
      cli.child.kill('SIGINT')
      expect((await cli.result).code).to.equal(130)
      const [will] = await wills
      expect(will!.payload.toString()).to.equal('gone')
    })

    it('143 on SIGTERM: a graceful DISCONNECT, no will', async () => {
      const client = teardown.add(await Client.connect(`mqtt://127.0.0.1:${port}`), (c) => c.destroy())
      const seen: string[] = []
      client.messages$.subscribe((m) => seen.push(m.topic))
      await client.subscribe({ topicFilter: 'will/#', qos: 1 })
      const cli = startCli(teardown, MQTTC, ['-p', String(port), '-t', 'x', '--will-topic', 'will/b', '--will-payload', 'gone', '-verbose'])
      await cli.waitForStderr(/subscribed/)
      cli.child.kill('SIGTERM')
      expect((await cli.result).code).to.equal(143)
      // A marker published after the exit arrives after any will would have: no will before it.
      await client.publish('will/marker', 'm', { qos: 1 })
      await new Promise<void>((resolve) => {
        const check = (): void => (seen.includes('will/marker') ? resolve() : void setTimeout(check, 10))
        check()
      })
      expect(seen).to.deep.equal(['will/marker'])
    })

    it('141 when standard output is closed (mqttc sub … | head -c1)', async () => {
      const cli = startCli(teardown, MQTTC, ['-p', String(port), '-t', 'pipe', '-verbose'])
      await cli.waitForStderr(/subscribed/)
      await publish('pipe', 'first')
      await cli.waitForStdout(1)
      cli.child.stdout!.destroy()
      for (let i = 0; i < 20 && cli.child.exitCode === null; i++) await publish('pipe', 'more '.repeat(1000))
      expect((await cli.result).code).to.equal(141)
    })
  })

  describe('publishing and request/response', () => {
    it('-l sends one message per line: LF splits, CR stays, an empty line is an empty message, the last line needs no LF', async () => {
      const { got } = await subscriber('lines', 4)
      const result = await mqttc(teardown, ['-p', String(port), '-t', 'lines', '-l', '-q', '1'], { input: 'a\n\nb\r\nc' })
      expect(result.code, result.stderr).to.equal(0)
      expect((await got).map((m) => m.payload.toString())).to.deep.equal(['a', '', 'b\r', 'c'])
    })

    it('-f, -n, -r and MQTT 5 properties (-D, --user-property, --content-type)', async () => {
      const file = join(dir, 'payload.bin')
      writeFileSync(file, Buffer.from([0, 1, 2, 255]))
      const { got } = await subscriber('p/#', 2, 5)
      expect((await mqttc(teardown, ['-p', String(port), '-t', 'p/file', '-f', file, '-q', '1', '-D', 'publish', 'user-property', 'k', 'v', '--content-type', 'application/octet-stream'])).code).to.equal(0)
      expect((await mqttc(teardown, ['-p', String(port), '-t', 'p/null', '-n', '-r'])).code).to.equal(0)
      const [first, second] = await got
      expect(first!.payload).to.deep.equal(Buffer.from([0, 1, 2, 255]))
      expect(first!.properties?.userProperties).to.deep.equal([['k', 'v']])
      expect(first!.properties?.contentType).to.equal('application/octet-stream')
      expect(second!.payload.length).to.equal(0)
    })

    it('connects over WebSocket (ws:// URL) and over a Unix socket (--unix, Mosquitto)', async () => {
      const broker = makeBroker(teardown)
      const wsPort = (await broker.listen({ transport: 'ws', host: '127.0.0.1', port: 0 })).port
      const wsClient = teardown.add(await Client.connect(`ws://127.0.0.1:${wsPort}/mqtt`), (c) => c.destroy())
      const wsGot = firstValueFrom(wsClient.messages$)
      await wsClient.subscribe({ topicFilter: 'over/ws', qos: 1 })
      expect((await mqttc(teardown, ['-t', 'over/ws', '-m', 'via ws', '-q', '1', `ws://127.0.0.1:${wsPort}/mqtt`])).code).to.equal(0)
      expect((await wsGot).payload.toString()).to.equal('via ws')

      const mosquitto = await startMosquitto()
      teardown.defer(() => mosquitto.stop())
      const unixClient = teardown.add(await Client.connect(`mqtt://127.0.0.1:${mosquitto.tcpPort}`), (c) => c.destroy())
      const unixGot = firstValueFrom(unixClient.messages$)
      await unixClient.subscribe({ topicFilter: 'over/unix', qos: 1 })
      const result = await mqttc(teardown, ['--unix', mosquitto.socketPath, '-t', 'over/unix', '-m', 'via unix', '-q', '1'])
      expect(result.code, result.stderr).to.equal(0)
      expect((await unixGot).payload.toString()).to.equal('via unix')
    })

    it('--json prints one JSON object per message (binary payloads in base64); -topic -quote print Go-quoted strings', async () => {
      const cli = startCli(teardown, MQTTC, ['-p', String(port), '-t', 'j/#', '-V', '5', '--json', '-C', '2', '-verbose'])
      await cli.waitForStderr(/subscribed/)
      const client = await Client.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 })
      await client.publish('j/text', 'hi "there"', { qos: 1, properties: { contentType: 'text/plain', userProperties: [['k', 'v']] } })
      await client.publish('j/bin', Buffer.from([0xff, 0x00]), { qos: 1 })
      await client.end()
      const result = await cli.result
      expect(result.code).to.equal(0)
      const lines = result.stdout.toString().trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
      expect(lines[0]).to.deep.include({ topic: 'j/text', qos: 0, retain: false, payload: 'hi "there"', properties: { contentType: 'text/plain', userProperties: [['k', 'v']] } })
      expect(lines[1]).to.deep.include({ topic: 'j/bin', payload: '/wA=', encoding: 'base64' })

      const quoted = startCli(teardown, MQTTC, ['-subscribe', 'q', '-topic', '-quote', '-verbose', `:${port}`])
      await quoted.waitForStderr(/subscribed/)
      await publish('q', 'tab\there')
      await quoted.waitForStdout(1)
      quoted.child.kill('SIGTERM')
      const out = await quoted.result
      expect(out.stdout.toString()).to.equal('"q" "tab\\there"\n')
      expect(out.code).to.equal(143)
    })

    it('--response-topic asks an MQTT 5 request and prints the response', async () => {
      const responder = teardown.add(await Client.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 }), (c) => c.destroy())
      responder.messages$.subscribe((m) => {
        void responder.publish(m.properties!.responseTopic!, `pong to ${m.payload.toString()}`, { qos: 1, properties: { correlationData: m.properties!.correlationData! } })
      })
      await responder.subscribe({ topicFilter: 'rpc/ping', qos: 1 })
      const result = await mqttc(teardown, ['-p', String(port), '-t', 'rpc/ping', '-m', 'ping', '--response-topic', 'rpc/reply/1'])
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stdout.toString()).to.equal('pong to ping\n')
    })
  })
})

/** A port nothing listens on (bound, then released). */
function freeClosedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}
