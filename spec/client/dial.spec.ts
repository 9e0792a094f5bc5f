import { expect } from 'chai'
import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import { Client } from '../../lib/client/client.js'
import type { InboundMessage } from '../../lib/client/inbound.js'
import { Decoder, encode } from '../../lib/packet/index.js'
import type { Packet } from '../../lib/packet/index.js'
import { parseBrokerUrl } from '../../lib/client/dial.js'
import { ConnectFailedError, InvalidRequestError } from '../../lib/client/errors.js'

describe('client – dial', () => {
  it('parses every supported URL scheme with its default port', () => {
    expect(parseBrokerUrl('mqtt://h')).to.deep.equal({ kind: 'tcp', host: 'h', port: 1883, path: '' })
    expect(parseBrokerUrl('tcp://h:1')).to.include({ kind: 'tcp', port: 1 })
    expect(parseBrokerUrl('mqtts://h')).to.include({ kind: 'tls', port: 8883 })
    expect(parseBrokerUrl('ssl://h')).to.include({ kind: 'tls', port: 8883 })
    expect(parseBrokerUrl('ws://h')).to.deep.equal({ kind: 'ws', host: 'h', port: 80, path: '/mqtt' })
    expect(parseBrokerUrl('wss://h:9/x')).to.deep.equal({ kind: 'wss', host: 'h', port: 9, path: '/x' })
    expect(parseBrokerUrl('mqtt+unix:///run/mqtt.sock')).to.include({ kind: 'unix', path: '/run/mqtt.sock' })
    expect(parseBrokerUrl('unix:///tmp/a%20b.sock')).to.include({ kind: 'unix', path: '/tmp/a b.sock' })
    expect(parseBrokerUrl('mqtt://[::1]:1884')).to.include({ host: '::1', port: 1884 })
    expect(() => parseBrokerUrl('http://h')).to.throw(InvalidRequestError)
  })

  it('rejects a closed port with ConnectFailedError (not-sent), quickly', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const error = (await Client.connect(`mqtt://127.0.0.1:${port}`).catch((e: unknown) => e)) as ConnectFailedError
    expect(error).to.be.instanceOf(ConnectFailedError)
    expect(error.outcome).to.equal('not-sent')
  })

  it('rejects a broker that accepts TCP but never answers CONNECT within the connect timeout', async () => {
    const server = createServer(() => undefined)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    try {
      const error = await Client.connect(`mqtt://127.0.0.1:${port}`, { connectTimeoutMs: 200 }).catch((e: unknown) => e)
      expect(error).to.have.property('code', 'ERR_MQTT_CONNECT_TIMEOUT')
    } finally {
      server.close()
    }
  })

  /** A scripted broker on a free port: CONNACK to CONNECT, then `script(socket, packet)` for every packet. */
  async function scripted(script: (socket: Socket, packet: Packet) => void): Promise<{ url: string; close(): void }> {
    const sockets = new Set<Socket>()
    const server = createServer((socket) => {
      sockets.add(socket)
      const decoder = new Decoder((packet) => {
        if (packet.type === 'connect') socket.write(encode({ type: 'connack', sessionPresent: false, reasonCode: 0 }, 4))
        else script(socket, packet)
      }, { role: 'server' })
      socket.on('data', (chunk: Buffer) => void decoder.push(chunk))
      socket.on('error', () => undefined)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    return { url: `mqtt://127.0.0.1:${port}`, close: () => {
      for (const socket of sockets) socket.destroy()
      server.close()
    } }
  }

  it('hands over payloads that stay intact after later reads (each read is a chunk of its own)', async () => {
    // One PUBLISH per read: the next is written only after the PUBACK of the previous one. A reader
    // that reused its buffer for the chunks would leave every kept payload showing the last bytes.
    const count = 50
    const publish = (socket: Socket, n: number): void => void socket.write(encode({ type: 'publish', topic: 't', payload: Buffer.from(`message ${n}`), qos: 1, retain: false, dup: false, packetId: n }, 4))
    const broker = await scripted((socket, packet) => {
      if (packet.type === 'subscribe') {
        socket.write(encode({ type: 'suback', packetId: packet.packetId, reasonCodes: [1] }, 4))
        publish(socket, 1)
      } else if (packet.type === 'puback' && packet.packetId < count) publish(socket, packet.packetId + 1)
    })
    const client = await Client.connect(broker.url, { protocolVersion: 4 })
    try {
      const kept: InboundMessage[] = []
      const all = new Promise<void>((resolve) => client.messages$.subscribe((message) => {
        kept.push(message)
        if (kept.length === count) resolve()
      }))
      await client.subscribe({ topicFilter: 't', qos: 1 })
      await all
      expect(kept.map((message) => message.payload.toString())).to.deep.equal(Array.from({ length: count }, (_, i) => `message ${i + 1}`))
    } finally {
      await client.end()
      broker.close()
    }
  })

  it('sends a QoS 0 payload as it was when publish returned (the caller may reuse its buffer)', async () => {
    const received: Buffer[] = []
    let done: () => void = () => undefined
    const arrived = new Promise<void>((resolve) => (done = resolve))
    const broker = await scripted((_socket, packet) => {
      if (packet.type !== 'publish') return
      received.push(Buffer.from(packet.payload))
      if (received.length === 3) done()
    })
    const client = await Client.connect(broker.url, { protocolVersion: 4 })
    try {
      const buffer = Buffer.from('first')
      const sent = [client.publish('a/b', buffer)]
      buffer.write('secnd')
      sent.push(client.publish('a/b', buffer, { retain: true }))
      buffer.write('third')
      sent.push(client.publish('a/c', buffer))
      buffer.write('xxxxx')
      await Promise.all(sent)
      await arrived
      expect(received.map(String)).to.deep.equal(['first', 'secnd', 'third'])
    } finally {
      await client.end()
      broker.close()
    }
  })
})
