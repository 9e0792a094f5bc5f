/**
 * Interoperability with MQTT.js (a client nobody here wrote), at MQTT 3.1.1 and 5.0, over TCP and
 * WebSocket.
 */
import { expect } from 'chai'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient, IPublishPacket, IDisconnectPacket } from 'mqtt'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { connect as tcpConnect } from 'node:net'
import type { Duplex } from 'node:stream'

interface Received {
  topic: string
  payload: string
  qos: number
  retain: boolean
}

/** Collects messages and waits for a count. */
class Inbox {
  readonly messages: Received[] = []
  private waiters: (() => void)[] = []
  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet: IPublishPacket) => {
      this.messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain })
      for (const wake of this.waiters.splice(0)) wake()
    })
  }
  async count(n: number, timeout = 4000): Promise<Received[]> {
    const deadline = Date.now() + timeout
    while (this.messages.length < n) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`got ${this.messages.length} of ${n} messages: ${JSON.stringify(this.messages)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.messages
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

for (const transport of ['tcp', 'ws'] as const) {
  for (const protocolVersion of [4, 5] as const) {
    describe(`interop – MQTT.js v${protocolVersion === 4 ? '3.1.1' : '5'} over ${transport}`, function () {
      this.timeout(10000)
      const teardown = useTeardown()
      let broker: Broker
      let url: string
      let tcpPort: number

      beforeEach(async () => {
        broker = teardown.add(
          new Broker({ backend: new MemoryBackend(), logger: silentLogger, timerInterval: 100 }),
          (b) => b.close()
        )
        const tcp = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
        tcpPort = tcp.port
        if (transport === 'tcp') {
          url = `mqtt://127.0.0.1:${tcp.port}`
        } else {
          const ws = await broker.listen({ transport: 'ws', host: '127.0.0.1', port: 0, path: '/mqtt' })
          url = `ws://127.0.0.1:${ws.port}/mqtt`
        }
      })

      async function client(options: IClientOptions = {}): Promise<MqttClient> {
        const c = await mqtt.connectAsync(url, { protocolVersion, reconnectPeriod: 0, connectTimeout: 3000, ...options })
        teardown.defer(() => c.endAsync(true))
        return c
      }

      it('QoS 0, 1 and 2 round trips', async () => {
        const sub = await client({ clientId: 'sub' })
        const inbox = new Inbox(sub)
        await sub.subscribeAsync('rt/#', { qos: 2 })
        const pub = await client({ clientId: 'pub' })
        await pub.publishAsync('rt/0', 'zero', { qos: 0 })
        await pub.publishAsync('rt/1', 'one', { qos: 1 })
        await pub.publishAsync('rt/2', 'two', { qos: 2 })
        const got = await inbox.count(3)
        expect(got.map((m) => [m.topic, m.payload, m.qos])).to.deep.equal([
          ['rt/0', 'zero', 0],
          ['rt/1', 'one', 1],
          ['rt/2', 'two', 2]
        ])
      })

      it('retained messages reach later subscribers with the retain flag; empty payload deletes', async () => {
        const pub = await client({ clientId: 'pub' })
        await pub.publishAsync('ret/a', 'A', { qos: 1, retain: true })
        await pub.publishAsync('ret/b', 'B', { qos: 1, retain: true })
        await pub.publishAsync('ret/b', '', { qos: 1, retain: true })
        const sub = await client({ clientId: 'sub' })
        const inbox = new Inbox(sub)
        await sub.subscribeAsync('ret/#', { qos: 1 })
        const got = await inbox.count(1)
        await sleep(50)
        expect(got).to.deep.equal([{ topic: 'ret/a', payload: 'A', qos: 1, retain: true }])
      })

      it('publishes the will when the connection drops abruptly', async () => {
        const watcher = await client({ clientId: 'watcher' })
        const inbox = new Inbox(watcher)
        await watcher.subscribeAsync('will/#', { qos: 1 })
        const dying = await client({ clientId: 'dying', will: { topic: 'will/dying', payload: Buffer.from('lost'), qos: 1, retain: false } })
        dying.stream.destroy()
        const got = await inbox.count(1)
        expect(got[0]).to.deep.include({ topic: 'will/dying', payload: 'lost' })
      })

      it('publishes the will on keepalive timeout', async () => {
        const watcher = await client({ clientId: 'watcher' })
        const inbox = new Inbox(watcher)
        await watcher.subscribeAsync('will/#', { qos: 0 })
        // A silent client: connects with keepalive 1 and then never sends anything.
        const stream = await new Promise<Duplex>((resolve) => {
          const s = tcpConnect({ host: '127.0.0.1', port: tcpPort }, () => resolve(s))
        })
        const silent = new Peer({ stream })
        teardown.defer(() => silent.destroy())
        await silent.connect({
          clientId: 'silent',
          keepalive: 1,
          will: { topic: 'will/silent', payload: Buffer.from('timeout'), qos: 0, retain: false }
        })
        const got = await inbox.count(1, 4000)
        expect(got[0]).to.deep.include({ topic: 'will/silent', payload: 'timeout' })
      })

      it('does not publish the will after a clean DISCONNECT', async () => {
        const watcher = await client({ clientId: 'watcher' })
        const inbox = new Inbox(watcher)
        await watcher.subscribeAsync('will/#', { qos: 0 })
        const leaving = await client({ clientId: 'leaving', will: { topic: 'will/leaving', payload: Buffer.from('x'), qos: 0, retain: false } })
        await leaving.endAsync()
        await sleep(100)
        expect(inbox.messages).to.deep.equal([])
      })

      it('a persistent session comes back to the messages queued while away', async () => {
        const persistent: IClientOptions = {
          clientId: 'persistent',
          clean: false,
          ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 300 } } : {})
        }
        const first = await client(persistent)
        await first.subscribeAsync('offline/#', { qos: 1 })
        await first.endAsync()
        const pub = await client({ clientId: 'pub' })
        await pub.publishAsync('offline/1', 'first', { qos: 1 })
        await pub.publishAsync('offline/2', 'second', { qos: 1 })
        const back = mqtt.connect(url, { protocolVersion, reconnectPeriod: 0, ...persistent })
        teardown.defer(() => back.endAsync(true))
        const inbox = new Inbox(back)
        const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => back.once('connect', resolve))
        expect(connack.sessionPresent).to.equal(true)
        const got = await inbox.count(2)
        expect(got.map((m) => m.payload)).to.deep.equal(['first', 'second'])
      })

      it('a second connection with the same client id takes the session over', async () => {
        const first = await client({ clientId: 'twin' })
        const closed = new Promise<void>((resolve) => first.once('close', () => resolve()))
        const disconnect = new Promise<IDisconnectPacket>((resolve) => first.once('disconnect', resolve))
        const second = await client({ clientId: 'twin' })
        await closed
        if (protocolVersion === 5) expect((await disconnect).reasonCode).to.equal(0x8e)
        const inbox = new Inbox(second)
        await second.subscribeAsync('twin/x', { qos: 0 })
        await second.publishAsync('twin/x', 'still here', { qos: 0 })
        expect((await inbox.count(1))[0]!.payload).to.equal('still here')
      })

      it('$ topics are not matched by wildcard filters, only by explicit ones', async () => {
        const all = await client({ clientId: 'all' })
        const allInbox = new Inbox(all)
        await all.subscribeAsync(['#', '+/status'], { qos: 0 })
        const sys = await client({ clientId: 'sys' })
        const sysInbox = new Inbox(sys)
        // ($SYS/ itself is the broker's: clients cannot publish there.)
        await sys.subscribeAsync('$internal/#', { qos: 0 })
        const pub = await client({ clientId: 'pub' })
        await pub.publishAsync('$internal/status', 'internal', { qos: 1 })
        await pub.publishAsync('dev/status', 'public', { qos: 1 })
        expect((await sysInbox.count(1))[0]).to.deep.include({ topic: '$internal/status' })
        const got = await allInbox.count(1)
        await sleep(50)
        expect(got.map((m) => m.topic)).to.deep.equal(['dev/status'])
      })

      it('overlapping subscriptions deliver one copy at the highest granted QoS', async () => {
        const sub = await client({ clientId: 'overlap' })
        const inbox = new Inbox(sub)
        await sub.subscribeAsync({ 'ov/+': { qos: 0 }, 'ov/#': { qos: 1 }, 'ov/x': { qos: 2 } })
        const pub = await client({ clientId: 'pub' })
        await pub.publishAsync('ov/x', 'once', { qos: 2 })
        const got = await inbox.count(1)
        await sleep(50)
        expect(got).to.have.length(1)
        expect(got[0]).to.deep.include({ payload: 'once', qos: 2 })
      })
    })
  }
}
