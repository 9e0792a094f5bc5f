import { expect } from 'chai'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { Connection } from '../../lib/transport/connection.js'
import { listenTcp } from '../../lib/transport/tcp.js'
import { useTeardown } from '../helpers/teardown.js'

describe('transport – TCP', () => {
  const teardown = useTeardown()

  it('binds port 0 on 127.0.0.1 and hands each socket over with TCP_NODELAY', async () => {
    const accepted: Connection[] = []
    const listener = teardown.add(await listenTcp({ host: '127.0.0.1', port: 0 }, (c) => accepted.push(c)), (l) => l.close())
    expect(listener.address).to.include({ transport: 'tcp', host: '127.0.0.1' })
    expect(listener.address.port).to.be.above(0)
    const socket = await new Promise<Socket>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: listener.address.port }, () => resolve(s))
    })
    teardown.defer(() => socket.destroy())
    const echoed = new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(chunk.toString())))
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(accepted).to.have.length(1)
    const connection = accepted[0]!
    expect(connection.transport).to.equal('tcp')
    expect(connection.remoteAddress).to.match(/^127\.0\.0\.1:\d+$/)
    connection.stream.write(Buffer.from('hi'))
    expect(await echoed).to.equal('hi')
    connection.stream.destroy()
  })

  it('rejects with EADDRINUSE when the port is taken', async () => {
    const first = teardown.add(await listenTcp({ host: '127.0.0.1', port: 0 }, () => undefined), (l) => l.close())
    const error = await listenTcp({ host: '127.0.0.1', port: first.address.port }, () => undefined).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e
    )
    expect(error?.code).to.equal('EADDRINUSE')
  })
})
