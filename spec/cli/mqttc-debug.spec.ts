import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import { expect } from 'chai'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Teardown } from '../helpers/teardown.js'
import { mqttc } from './helpers.js'

/** A TCP server that answers CONNECT with `connack` and then ignores everything (no PINGRESP). */
async function rawServer(teardown: Teardown, connack: Buffer): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    let answered = false
    socket.on('data', (chunk: Buffer) => {
      if (!answered && chunk[0] === 0x10) {
        answered = true
        socket.write(connack)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  teardown.add(server, (s) => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    s.close(() => resolve())
  }))
  return (server.address() as { port: number }).port
}

describe('mqttc – -d packet trace, the health check ping, a 3.x-only server', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  let port = 0

  beforeEach(async () => {
    const broker = makeBroker(teardown)
    port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
  })

  it('-d prints every packet sent and received on stderr, as mosquitto_pub -d does', async () => {
    const result = await mqttc(teardown, ['-d', '-i', 'tracer', '-p', String(port), '-t', 't/d', '-m', 'hello', '-q', '1'])
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout.toString()).to.equal('')
    expect(result.stderr.split('\n').filter((line) => line !== '')).to.deep.equal([
      'Client tracer sending CONNECT',
      'Client tracer received CONNACK (0)',
      "Client tracer sending PUBLISH (d0, q1, r0, m1, 't/d', ... (5 bytes))",
      'Client tracer received PUBACK (Mid: 1, RC:0)',
      'Client tracer sending DISCONNECT'
    ])
  })

  it('-d traces a subscriber: SUBSCRIBE with its options, SUBACK, the PUBLISH received and our PUBACK', async () => {
    const sub = mqttc(teardown, ['-d', '-i', 'sub-1', '-p', String(port), '-t', 'd/#', '-q', '1', '-C', '1', '-W', '20'])
    // Publish until the subscriber has subscribed (a retained message reaches it whenever it comes).
    const pub = await mqttc(teardown, ['-p', String(port), '-t', 'd/x', '-m', 'abc', '-q', '1', '-r'])
    expect(pub.code, pub.stderr).to.equal(0)
    const result = await sub
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout.toString()).to.equal('abc\n')
    const lines = result.stderr.split('\n')
    expect(lines).to.include('Client sub-1 sending SUBSCRIBE (Mid: 1, Topic: d/#, QoS: 1, Options: 0x00)')
    expect(lines).to.include('Client sub-1 received SUBACK')
    expect(lines.some((line) => /^Client sub-1 received PUBLISH \(d0, q1, r[01], m\d+, 'd\/x', \.\.\. \(3 bytes\)\)$/.test(line)), result.stderr).to.equal(true)
    expect(lines.some((line) => /^Client sub-1 sending PUBACK \(m\d+, rc0\)$/.test(line)), result.stderr).to.equal(true)
  })

  it('the health check (no -t) pings: 0 on PINGRESP, 1 when the broker never answers PINGREQ', async () => {
    const ok = await mqttc(teardown, ['-d', '-i', 'hc', `:${port}`])
    expect(ok.code, ok.stderr).to.equal(0)
    expect(ok.stderr).to.contain('Client hc sending PINGREQ\nClient hc received PINGRESP\nClient hc sending DISCONNECT\n')
    const mute = await rawServer(teardown, Buffer.from([0x20, 0x02, 0x00, 0x00]))
    const started = Date.now()
    const dead = await mqttc(teardown, ['-timeout', '1s', `:${mute}`])
    expect(dead.code).to.equal(1)
    expect(dead.stderr).to.match(/no PINGRESP within 1000 ms/)
    expect(Date.now() - started).to.be.below(30_000)
  })

  it('5: a server that answers a -V 5 CONNECT with a 3.x CONNACK (20 02 00 01) refused the protocol version', async () => {
    const legacy = await rawServer(teardown, Buffer.from([0x20, 0x02, 0x00, 0x01]))
    const result = await mqttc(teardown, ['-V', '5', `:${legacy}`])
    expect(result.code, result.stderr).to.equal(5)
    expect(result.stderr).to.match(/refused: 0x84 \(the server answered with an MQTT 3\.x CONNACK/)
  })
})
