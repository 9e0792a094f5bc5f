import { expect } from 'chai'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { freePort, startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'

const BIN = fileURLToPath(new URL('../../../bin/mqtt-broker.ts', import.meta.url))

interface Run {
  child: ChildProcess
  out: string
  exit: Promise<number | null>
}

function start(args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const run: Run = { child, out: '', exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))) }
  child.stdout!.on('data', (chunk: Buffer) => (run.out += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (run.out += chunk.toString()))
  return run
}

async function listening(run: Run): Promise<number> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const match = /listening on tcp:\/\/127\.0\.0\.1:(\d+)/.exec(run.out)
    if (match !== null) return Number(match[1])
    if (run.child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`broker did not start:\n${run.out}`)
}

describe('mqtt-broker --redis: processes on one Redis form one broker', function () {
  this.timeout(40_000)
  let redis: RedisServer
  const runs: Run[] = []

  before(async () => {
    redis = await startRedisServer()
  })
  afterEach(async () => {
    for (const run of runs.splice(0)) {
      if (run.child.exitCode === null) run.child.kill('SIGTERM')
      await run.exit
    }
  })
  after(async () => {
    await redis.dispose()
  })

  it('two processes share subscriptions and messages, and warn that Redis persistence is off', async () => {
    const a = start(['--port', '0', '--redis', redis.url, '--node-id', 'a', '--sys-interval', '1'])
    const b = start(['--port', '0', '--redis', redis.url, '--node-id', 'b', '--sys-interval', '1'])
    runs.push(a, b)
    const [portA, portB] = await Promise.all([listening(a), listening(b)])
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${portA}`, { clientId: 'sub', reconnectPeriod: 0 })
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${portB}`, { clientId: 'pub', reconnectPeriod: 0 })
    try {
      const got: string[] = []
      sub.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
      // No settling delay: from the SUBACK on, a publish on the other process reaches it.
      await sub.subscribeAsync('room/+', { qos: 1 })
      for (let i = 0; i < 5; i++) await pub.publishAsync(`room/${i}`, `m${i}`, { qos: 1 })
      const deadline = Date.now() + 5000
      while (got.length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
      expect(got).to.deep.equal(['room/0 m0', 'room/1 m1', 'room/2 m2', 'room/3 m3', 'room/4 m4'])
      // Each process publishes its own $SYS figures under its node id, seen from any process.
      const sys: string[] = []
      pub.on('message', (topic, payload) => sys.push(`${topic} ${payload.toString()}`))
      await pub.subscribeAsync('$SYS/brokers/a/clients/connected', { qos: 0 })
      const until = Date.now() + 4000
      while (!sys.includes('$SYS/brokers/a/clients/connected 1') && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 25))
      expect(sys).to.include('$SYS/brokers/a/clients/connected 1')
    } finally {
      await Promise.all([sub.endAsync(), pub.endAsync()])
    }
    expect(a.out).to.match(/persistence/i) // the durability warning (the test server runs without AOF)
    a.child.kill('SIGTERM')
    expect(await a.exit).to.equal(0)
  })

  it('stops with a clear message and exit code 1 when Redis cannot be reached', async () => {
    const port = await freePort()
    const run = start(['--port', '0', '--redis', `redis://127.0.0.1:${port}`])
    runs.push(run)
    expect(await run.exit).to.equal(1)
    expect(run.out).to.include(`cannot use Redis at redis://127.0.0.1:${port}`)
  })

  it('refuses bad values with exit code 2', async () => {
    for (const args of [['--redis', 'http://x'], ['--tenant', 'Bad Tenant'], ['--tenant-by', 'nope'], ['--node-id', 'x']]) {
      const run = start(args)
      runs.push(run)
      expect(await run.exit, args.join(' ')).to.equal(2)
    }
  })
})
