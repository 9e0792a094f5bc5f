import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import { expect } from 'chai'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import { startMosquitto } from '../client/helpers/mosquitto.js'
import { parseRecords } from '../../lib/bench/results.js'
import { BENCH, runCli } from './helpers.js'

/** Tiny sizes: this checks the tool, not the brokers' speed. */
const SHORT = ['--fanin-count', '2000', '--pairs', '5', '--pairs-count', '200', '--latency-seconds', '1', '--latency-rate', '200', '--connections', '50', '--hold-ms', '200', '--quiet']

describe('mqtt-bench – as a process', function () {
  this.timeout(180_000)
  const teardown = useTeardown()
  let dir = ''

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mqtt-bench-spec-'))
    teardown.defer(() => rmSync(dir, { recursive: true, force: true }))
  })

  it('compare: our broker, Mosquitto and Aedes side by side with ratios; plot writes an SVG of the results', async () => {
    const ours = makeBroker(teardown, { maxOutgoingQueue: 1_000_000 })
    const oursPort = (await ours.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    const mosquitto = await startMosquitto()
    teardown.defer(() => mosquitto.stop())
    const aedes = await Aedes.createBroker()
    const server = createServer(aedes.handle)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    teardown.add(server, (s) => new Promise<void>((resolve) => aedes.close(() => s.close(() => resolve()))))
    const aedesPort = (server.address() as { port: number }).port
    const out = join(dir, 'results.jsonl')

    const result = await runCli(teardown, BENCH, [
      'compare', `ours=mqtt://127.0.0.1:${oursPort}`, `mosquitto=mqtt://127.0.0.1:${mosquitto.tcpPort}`, `aedes=mqtt://localhost:${aedesPort}`,
      '--reps', '1', '--scenarios', 'fanin-q0,pairs-q1,pairs-q2,latency,connections', '--out', out, ...SHORT
    ], { timeoutMs: 170_000 })
    expect(result.code, result.stderr).to.equal(0)
    const text = result.stdout.toString()
    expect(text).to.match(/\| scenario +\| +ours \| +mosquitto \| +aedes \| +unit +\| ours ÷ mosquitto \| ours ÷ aedes \|/)
    for (const scenario of ['fanin-q0', 'pairs-q1', 'pairs-q2', 'latency', 'connections']) expect(text).to.match(new RegExp(`\\| ${scenario} .*\\d\\.\\d\\d× \\| +\\d+\\.\\d\\d× \\|`))

    const records = parseRecords(readFileSync(out, 'utf8'), out)
    expect(records).to.have.length(15)
    expect(new Set(records.map((r) => r.broker))).to.deep.equal(new Set(['ours', 'mosquitto', 'aedes']))
    for (const record of records) expect(record.ok, `${record.broker} ${record.scenario}: ${record.problem}`).to.equal(true)

    const svg = join(dir, 'chart.svg')
    const plot = await runCli(teardown, BENCH, ['plot', out, '--out', svg, '--title', 'spec run'])
    expect(plot.code, plot.stderr).to.equal(0)
    const chart = readFileSync(svg, 'utf8')
    expect(chart).to.match(/^<\?xml[^]*<svg [^]*<\/svg>\n$/)
    for (const name of ['ours', 'mosquitto', 'aedes', 'fanin-q0', 'pairs-q1', 'connections', 'p99.9', 'spec run']) expect(chart).to.include(name)
    expect(chart.match(/<rect /g)?.length).to.be.greaterThan(15)
  })

  it('run: a table by default, JSON lines with --json; refuses a non-loopback broker without --allow-remote', async () => {
    const broker = makeBroker(teardown)
    const port = (await broker.listen({ transport: 'ws', host: '127.0.0.1', port: 0 })).port
    const table = await runCli(teardown, BENCH, [`ws://127.0.0.1:${port}/mqtt`, '--scenarios', 'fanin-q1', ...SHORT])
    expect(table.code, table.stderr).to.equal(0)
    expect(table.stdout.toString()).to.match(/\| fanin-q1 +\| +[\d,]+ \| +msg\/s \| lost 0, dup 0 \| +1\/1 \|/)
    const json = await runCli(teardown, BENCH, [`ws://127.0.0.1:${port}`, '--scenarios', 'pairs-q0', '--json', ...SHORT])
    expect(json.code, json.stderr).to.equal(0)
    const [record] = parseRecords(json.stdout.toString(), 'stdout')
    expect(record).to.include({ scenario: 'pairs-q0', ok: true, lost: 0 })

    // QoS 1 latency: the subscriber acknowledges every delivery, nothing lost or duplicated.
    const q1 = await runCli(teardown, BENCH, [`ws://127.0.0.1:${port}`, '--scenarios', 'latency-q1', '--json', ...SHORT])
    expect(q1.code, q1.stderr).to.equal(0)
    const [latency] = parseRecords(q1.stdout.toString(), 'stdout')
    expect(latency).to.include({ scenario: 'latency-q1', ok: true, lost: 0, duplicates: 0, deliveries: 200 })

    const remote = await runCli(teardown, BENCH, ['mqtt://192.0.2.1:1883'])
    expect(remote.code).to.equal(2)
    expect(remote.stderr).to.match(/not a loopback address: pass --allow-remote/)
    expect((await runCli(teardown, BENCH, ['--scenarios', 'nope'])).code).to.equal(2)
  })
})
