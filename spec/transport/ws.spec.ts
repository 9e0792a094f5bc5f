import { expect } from 'chai'
import { WebSocket } from 'ws'
import type { Connection } from '../../lib/transport/connection.js'
import { listenWebSocket } from '../../lib/transport/ws.js'
import { useTeardown } from '../helpers/teardown.js'

function open(url: string, protocols?: string | string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols)
    socket.once('open', () => resolve(socket))
    socket.once('error', reject)
  })
}

describe('transport – WebSocket', () => {
  const teardown = useTeardown()

  it('serves /mqtt with subprotocol "mqtt" and carries binary frames as bytes [MQTT-6.0.0-3]', async () => {
    const accepted: Connection[] = []
    const listener = teardown.add(await listenWebSocket({ host: '127.0.0.1', port: 0 }, (c) => accepted.push(c)), (l) => l.close())
    expect(listener.address).to.include({ transport: 'ws', path: '/mqtt' })
    const socket = await open(`ws://127.0.0.1:${listener.address.port}/mqtt`, 'mqtt')
    teardown.defer(() => socket.terminate())
    expect(socket.protocol).to.equal('mqtt')
    await new Promise((resolve) => setTimeout(resolve, 20))
    const connection = accepted[0]!
    const got = new Promise<Buffer>((resolve) => connection.stream.once('data', (chunk: Buffer) => resolve(chunk)))
    socket.send(Buffer.from([0xc0, 0x00]))
    expect(await got).to.deep.equal(Buffer.from([0xc0, 0x00]))
    const back = new Promise<Buffer>((resolve) => socket.once('message', (data) => resolve(data as Buffer)))
    connection.stream.write(Buffer.from([0xd0, 0x00]))
    expect(await back).to.deep.equal(Buffer.from([0xd0, 0x00]))
    connection.stream.destroy()
  })

  it('refuses a client that offers only other subprotocols', async () => {
    const listener = teardown.add(await listenWebSocket({ host: '127.0.0.1', port: 0 }, () => undefined), (l) => l.close())
    const error = await open(`ws://127.0.0.1:${listener.address.port}/mqtt`, 'chat').then(
      (socket) => {
        socket.terminate()
        return undefined
      },
      (e: Error) => e
    )
    expect(error).to.be.instanceOf(Error)
  })

  it('refuses other paths', async () => {
    const listener = teardown.add(await listenWebSocket({ host: '127.0.0.1', port: 0 }, () => undefined), (l) => l.close())
    const error = await open(`ws://127.0.0.1:${listener.address.port}/other`, 'mqtt').then(
      (socket) => {
        socket.terminate()
        return undefined
      },
      (e: Error) => e
    )
    expect(error).to.be.instanceOf(Error)
  })
})
