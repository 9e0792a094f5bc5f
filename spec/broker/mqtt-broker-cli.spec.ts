import { expect } from 'chai'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { connect as tcpConnect } from 'node:net'
import type { Duplex } from 'node:stream'

const BIN = fileURLToPath(new URL('../../bin/mqtt-broker.ts', import.meta.url))

interface Run {
  child: ChildProcess
  stdout: string
  stderr: string
  exit: Promise<number | null>
}

function start(args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const run: Run = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  }
  child.stdout!.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()))
  return run
}

async function waitFor(run: Run, pattern: RegExp, timeout = 8000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeout
  while (Date.now() < deadline) {
    const match = run.stdout.match(pattern)
    if (match !== null) return match
    if (run.child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`no "${pattern}" in output: ${run.stdout} ${run.stderr}`)
}

describe('bin/mqtt-broker', function () {
  this.timeout(15000)
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
})
