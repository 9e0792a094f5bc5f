import { connect } from 'node:net'
import type { Duplex } from 'node:stream'
import { e2eSuite } from './e2e-suite.js'

e2eSuite({
  name: 'TCP',
  async start(broker) {
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return () =>
      new Promise<Duplex>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket))
        socket.once('error', reject)
      })
  }
})
