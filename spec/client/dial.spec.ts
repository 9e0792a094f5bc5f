import { expect } from 'chai'
import { createServer } from 'node:net'
import { Client } from '../../lib/client/client.js'
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
})
