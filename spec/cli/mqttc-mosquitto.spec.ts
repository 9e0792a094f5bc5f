import { spawn } from 'node:child_process'
import { expect } from 'chai'
import { Client } from '../../lib/client/index.js'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Teardown } from '../helpers/teardown.js'
import { startMosquitto } from '../client/helpers/mosquitto.js'
import { MQTTC, startCli } from './helpers.js'
import type { Cli } from './helpers.js'

/**
 * mqttc's output compared byte for byte with mosquitto_sub 2.0's for the same messages and the
 * same flags, through Mosquitto and through our broker.
 */
const CASES: { name: string; args: string[]; count: number }[] = [
  { name: 'default output', args: [], count: 6 },
  { name: '-v', args: ['-v'], count: 6 },
  { name: '-N', args: ['-N'], count: 6 },
  { name: '-F "%t %l %q %r %p"', args: ['-F', '%t %l %q %r %p'], count: 6 },
  { name: '-F hex, widths, escapes', args: ['-F', '%x|%X|%5l|%-5q|%05l|%8t|%-12p|%%|\\t|\\\\|%r'], count: 6 },
  { name: '-F with -N', args: ['-F', '[%t]', '-N'], count: 6 },
  { name: '-R (no stale) and -T (filter out)', args: ['-v', '-R', '-T', 'd/skip/#'], count: 4 },
  { name: '-F MQTT 5 properties', args: ['-V', '5', '-F', '%t C=%C D=%D F=%F P=%P R=%R S=%S', '-D', 'subscribe', 'subscription-identifier', '7'], count: 6 }
]

async function publishSet(url: string, teardown: Teardown): Promise<void> {
  const client = teardown.add(await Client.connect(url, { protocolVersion: 5 }), (c) => c.destroy())
  await client.publish('d/text', 'hello world', { qos: 1 })
  await client.publish('d/bin', Buffer.from([0, 1, 0xfe, 0xff, 0x0a]), { qos: 1 })
  await client.publish('d/empty', '', { qos: 1 })
  await client.publish('d/skip/x', 'filtered', { qos: 1 })
  await client.publish('d/props', 'p', {
    qos: 1,
    properties: { contentType: 'text/plain', correlationData: Buffer.from('cd'), responseTopic: 'r/t', userProperties: [['a', '1'], ['b', '2']], payloadFormatIndicator: true }
  })
  await client.end()
}

function mosquittoSub(teardown: Teardown, args: string[]): Cli & { code: Promise<number> } {
  const child = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  teardown.defer(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const stdout: Buffer[] = []
  const stderr: string[] = []
  child.stdout.on('data', (c: Buffer) => stdout.push(c))
  child.stderr.on('data', (c: Buffer) => stderr.push(c.toString()))
  const code = new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)))
  const waitForStdout = async (bytes: number, timeoutMs = 20_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (Buffer.concat(stdout).length < bytes) {
      if (Date.now() > deadline) throw new Error(`mosquitto_sub: no output; ${stderr.join('')}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return { child, stdout, stderr, code, waitForStdout } as unknown as Cli & { code: Promise<number> }
}

for (const target of ['mosquitto', 'our broker'] as const) {
  describe(`mqttc – output identical to mosquitto_sub's, through ${target}`, function () {
    this.timeout(90_000)
    const teardown = useTeardown()
    let port = 0

    beforeEach(async () => {
      if (target === 'mosquitto') {
        const mosquitto = await startMosquitto()
        teardown.defer(() => mosquitto.stop())
        port = mosquitto.tcpPort
      } else {
        const broker = makeBroker(teardown)
        port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
      }
      // A retained message first: each subscriber prints it as soon as it is subscribed.
      const client = await Client.connect(`mqtt://127.0.0.1:${port}`)
      await client.publish('d/retained', 'retained hi', { qos: 1, retain: true })
      await client.end()
    })

    for (const { name, args, count } of CASES) {
      it(name, async () => {
        const common = ['-p', String(port), '-t', 'd/#', '-q', '1', '-C', String(count), ...args]
        const theirs = mosquittoSub(teardown, common)
        const ours = startCli(teardown, MQTTC, common, { stdin: 'ignore' })
        const retainedSeen = args.includes('-R')
        if (!retainedSeen) {
          await theirs.waitForStdout(1)
          await ours.waitForStdout(1)
        } else {
          // -R prints nothing for the retained message: no output to wait for: give both time to subscribe (the one fixed wait here).
          await new Promise((resolve) => setTimeout(resolve, 3000))
        }
        await publishSet(`mqtt://127.0.0.1:${port}`, teardown)
        const [theirCode, ourResult] = await Promise.all([theirs.code, ours.result])
        const expected = Buffer.concat(theirs.stdout)
        expect(theirCode, theirs.stderr.join('')).to.equal(0)
        expect(ourResult.code, ourResult.stderr).to.equal(0)
        expect(ourResult.stdout.toString('latin1')).to.equal(expected.toString('latin1'))
        expect(ourResult.stdout.equals(expected)).to.equal(true)
      })
    }
  })
}
