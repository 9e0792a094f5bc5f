import type { Duplex } from 'node:stream'
import { WebSocket, createWebSocketStream } from 'ws'
import { e2eSuite } from './e2e-suite.js'

e2eSuite({
  name: 'WebSocket',
  async start(broker) {
    const { port } = await broker.listen({ transport: 'ws', host: '127.0.0.1', port: 0, path: '/mqtt' })
    return () =>
      new Promise<Duplex>((resolve, reject) => {
        const socket = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, 'mqtt')
        socket.once('open', () => resolve(createWebSocketStream(socket)))
        socket.once('error', reject)
      })
  }
})
