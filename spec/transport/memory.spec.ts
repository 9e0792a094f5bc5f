import { expect } from 'chai'
import { memoryPair } from '../../lib/transport/memory.js'
import { until } from '../helpers/virtual-clock.js'

describe('transport – in-memory pair', () => {
  it('carries bytes both ways, in order, asynchronously', async () => {
    const { server, client } = memoryPair()
    const received: Buffer[] = []
    server.stream.on('data', (chunk: Buffer) => received.push(chunk))
    client.write(Buffer.from('ab'))
    client.write(Buffer.from('cd'))
    expect(received).to.have.length(0)
    await until(() => Buffer.concat(received).length >= 4, 'abcd delivered')
    expect(Buffer.concat(received).toString()).to.equal('abcd')
    const back: Buffer[] = []
    client.on('data', (chunk: Buffer) => back.push(chunk))
    server.stream.write(Buffer.from('ok'))
    await until(() => Buffer.concat(back).length >= 2, 'ok delivered')
    expect(Buffer.concat(back).toString()).to.equal('ok')
    expect(server.transport).to.equal('memory')
  })

  it('closing one end closes the other', async () => {
    const { server, client } = memoryPair()
    server.stream.resume()
    const closed = new Promise<void>((resolve) => server.stream.once('close', () => resolve()))
    client.destroy()
    await closed
  })

  it('copies written bytes: changing the buffer after write does not change what arrives', async () => {
    const { server, client } = memoryPair()
    const received: Buffer[] = []
    server.stream.on('data', (chunk: Buffer) => received.push(chunk))
    const buffer = Buffer.from('xy')
    client.write(buffer)
    buffer[0] = 0x7a
    await until(() => Buffer.concat(received).length >= 2, 'xy delivered')
    expect(Buffer.concat(received).toString()).to.equal('xy')
  })
})
