import { expect } from 'chai'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { listeningOn, portOf, startBroker, waitForOutput } from '../../helpers/broker-process.js'
import type { BrokerProcess } from '../../helpers/broker-process.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { Teardown } from '../../helpers/teardown.js'

/** Whether a process with `pid` runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Resolves once `predicate` holds (polled), or rejects with `what` after `timeout` ms. */
async function until(predicate: () => boolean, what: string, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** The worker pids from the primary's `workers listening … pids=a,b` log line. */
async function workerPids(run: BrokerProcess): Promise<number[]> {
  const match = await waitForOutput(run, /workers listening[^\n]*pids=([\d,]+)/, 30_000, 'stderr')
  return match[1]!.split(',').map(Number)
}

describe('mqtt-broker --workers: several processes on one port (node:cluster) over Redis', function () {
  this.timeout(90_000)
  let redis: RedisServer
  const teardown = new Teardown()
  const clients: MqttClient[] = []

  before(async () => {
    redis = await startRedisServer()
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await teardown.run()
  })
  after(async () => {
    await redis.dispose()
  })

  async function connect(port: number, clientId: string): Promise<MqttClient> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0 })
    clients.push(client)
    return client
  }

  it('refuses more than one worker without the redis backend, with a clear error and exit code 2', async () => {
    const run = startBroker(['--port', '0', '--workers', '2'], { teardown })
    expect(await run.exit).to.equal(2)
    expect(run.stderr).to.match(/workers: 2 needs the redis backend/)
    expect(run.stdout).to.not.match(/listening on/)
  })

  it('clients on different workers exchange messages; a crashed worker is restarted; SIGTERM stops every worker', async () => {
    const run = startBroker(['--port', '0', '--workers', '2', '--redis', redis.url, '--node-id', 'mc', '--sys-interval', '1', '--log-format', 'text'], { teardown })
    const [url] = await listeningOn(run, 1, 60_000)
    const port = portOf(url!)
    const pids = await workerPids(run)
    expect(pids).to.have.length(2)
    teardown.defer(() => {
      for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
    })
    expect(run.stdout).to.match(/mqtt-broker workers: 2/)

    // The primary hands connections to the workers in turn: two clients land on two workers, which
    // each report one connected client under their own node id (mc-w0, mc-w1).
    const sub = await connect(port, 'sub')
    const pub = await connect(port, 'pub')
    const sys = new Map<string, string>()
    const got: string[] = []
    sub.on('message', (topic, payload) => {
      if (topic.startsWith('$SYS/')) sys.set(topic, payload.toString())
      else got.push(`${topic} ${payload.toString()}`)
    })
    await sub.subscribeAsync('$SYS/brokers/+/clients/connected', { qos: 0 })
    await until(() => sys.get('$SYS/brokers/mc-w0/clients/connected') === '1' && sys.get('$SYS/brokers/mc-w1/clients/connected') === '1', 'one client on each worker')

    await sub.subscribeAsync('room/+', { qos: 1 })
    for (let i = 0; i < 5; i++) await pub.publishAsync(`room/${i}`, `m${i}`, { qos: 1 })
    await until(() => got.length >= 5, 'five messages across workers')
    expect(got).to.deep.equal(['room/0 m0', 'room/1 m1', 'room/2 m2', 'room/3 m3', 'room/4 m4'])

    // A worker that dies is replaced; the port keeps serving.
    process.kill(pids[1]!, 'SIGKILL')
    await waitForOutput(run, /worker listening again/, 30_000, 'stderr')
    const again = await connect(port, 'again')
    const late = await connect(port, 'late')
    const seen: string[] = []
    again.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`))
    await again.subscribeAsync('after/crash', { qos: 1 })
    await late.publishAsync('after/crash', 'ok', { qos: 1 })
    await until(() => seen.length >= 1, 'a message after the restart')
    expect(seen).to.deep.equal(['after/crash ok'])
    const restarted = Number(/worker listening again[^\n]*pid=(\d+)/.exec(run.stderr)![1])
    teardown.defer(() => {
      if (alive(restarted)) process.kill(restarted, 'SIGKILL')
    })

    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
    expect(alive(pids[0]!)).to.equal(false)
    expect(alive(restarted)).to.equal(false)
  })
})
