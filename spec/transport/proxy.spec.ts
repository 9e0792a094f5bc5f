import { expect } from 'chai'
import { connect, createServer } from 'node:net'
import type { Socket } from 'node:net'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { encode } from '../../lib/packet/encoder.js'
import type { Credentials } from '../../lib/backend/backend.js'
import type { BrokerEvent } from '../../lib/broker/events.js'
import type { BoundListener, ListenerConfig } from '../../lib/transport/listeners.js'
import { makeBroker } from '../helpers/broker.js'
import { makeCerts } from '../helpers/certs.js'
import type { TestCerts } from '../helpers/certs.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Teardown } from '../helpers/teardown.js'
import { connectTo, within } from './mqttjs.js'

/**
 * A load balancer stand-in: accepts on a free port, connects to `port`, writes `header` first and
 * then relays both ways (the bytes of TLS included, as a TCP proxy does).
 */
async function proxy(teardown: Teardown, port: number, header: Buffer): Promise<BoundListener> {
  const sockets = new Set<Socket>()
  const server = createServer((inbound) => {
    const outbound = connect({ host: '127.0.0.1', port }, () => {
      outbound.write(header)
      inbound.pipe(outbound)
      outbound.pipe(inbound)
    })
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.on('error', () => undefined)
      s.on('close', () => {
        sockets.delete(s)
        inbound.destroy()
        outbound.destroy()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  teardown.defer(() => {
    for (const s of sockets) s.destroy()
    return new Promise((resolve) => server.close(resolve))
  })
  const address = server.address()
  const bound = typeof address === 'object' && address !== null ? address.port : 0
  return { name: 'proxy', kind: 'tcp', host: '127.0.0.1', port: bound }
}

function v2Header(source: number[], sourcePort: number): Buffer {
  const header = Buffer.alloc(28)
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(header, 0)
  header[12] = 0x21
  header[13] = 0x11
  header.writeUInt16BE(12, 14)
  Buffer.from(source).copy(header, 16)
  Buffer.from([127, 0, 0, 1]).copy(header, 20)
  header.writeUInt16BE(sourcePort, 24)
  header.writeUInt16BE(1883, 26)
  return header
}

describe('transport – client address behind proxies (PROXY protocol, X-Forwarded-For)', function () {
  this.timeout(20_000)
  const teardown = useTeardown()
  let certs: TestCerts
  before(async () => {
    certs = await makeCerts()
  })
  after(() => certs.remove())

  /** A broker on `config`, recording what authenticate sees. */
  async function start(config: ListenerConfig): Promise<{ seen: Credentials[]; events: BrokerEvent[]; listener: BoundListener }> {
    const seen: Credentials[] = []
    const backend = new MemoryBackend({
      authenticate: (_client, credentials) => {
        seen.push(credentials)
        return { result: 'allow' }
      }
    })
    const broker = makeBroker(teardown, { backend })
    const events: BrokerEvent[] = []
    const subscription = broker.events$.subscribe((event) => events.push(event))
    teardown.defer(() => subscription.unsubscribe())
    const { addresses } = await broker.listenAll([config])
    return { seen, events, listener: addresses[0]! }
  }

  for (const kind of ['tcp', 'tls'] as const) {
    const tls = (c: TestCerts) => (kind === 'tls' ? { tls: { key: c.server.keyFile, cert: c.server.certFile } } : {})

    it(`${kind}: a trusted proxy's PROXY v1 header gives the client's real address to authenticate`, async () => {
      const { seen, listener } = await start({ kind, port: 0, name: 'edge', proxyProtocol: true, trustedProxies: ['127.0.0.1'], ...tls(certs) })
      const front = await proxy(teardown, listener.port, Buffer.from(`PROXY TCP4 203.0.113.7 127.0.0.1 40001 ${listener.port}\r\n`))
      await connectTo(teardown, { ...front, kind }, { ca: certs.ca.cert, protocolVersion: 5 })
      expect(seen).to.have.length(1)
      expect(seen[0]!.connection).to.deep.include({ transport: kind, remoteAddress: '203.0.113.7:40001', listener: 'edge' })
    })

    it(`${kind}: a trusted proxy's PROXY v2 header gives the client's real address`, async () => {
      const { seen, listener } = await start({ kind, port: 0, proxyProtocol: true, trustedProxies: ['127.0.0.0/8'], ...tls(certs) })
      const front = await proxy(teardown, listener.port, v2Header([198, 51, 100, 20], 50123))
      await connectTo(teardown, { ...front, kind }, { ca: certs.ca.cert, protocolVersion: 4 })
      expect(seen[0]!.connection?.remoteAddress).to.equal('198.51.100.20:50123')
    })

    it(`${kind}: a peer that is not a trusted proxy is closed, header or not`, async () => {
      const { seen, listener } = await start({ kind, port: 0, proxyProtocol: true, trustedProxies: ['10.0.0.0/8'], ...tls(certs) })
      const front = await proxy(teardown, listener.port, Buffer.from(`PROXY TCP4 203.0.113.7 127.0.0.1 40001 ${listener.port}\r\n`))
      const error = await connectTo(teardown, { ...front, kind }, { ca: certs.ca.cert }).then(
        () => undefined,
        (e: Error) => e
      )
      expect(error).to.be.instanceOf(Error)
      expect(seen).to.have.length(0)
    })
  }

  it('tcp: a trusted peer without a PROXY header is closed (its first bytes are not a header)', async () => {
    const { seen, listener } = await start({ kind: 'tcp', port: 0, proxyProtocol: true, trustedProxies: ['127.0.0.1'] })
    const error = await connectTo(teardown, listener).then(
      () => undefined,
      (e: Error) => e
    )
    expect(error?.message).to.match(/closed before CONNACK/)
    expect(seen).to.have.length(0)
  })

  it('tcp: a trusted peer that sends a malformed header is closed', async () => {
    const { seen, listener } = await start({ kind: 'tcp', port: 0, proxyProtocol: true, trustedProxies: ['127.0.0.1'] })
    const front = await proxy(teardown, listener.port, Buffer.from('PROXY TCP4 203.0.113.999 127.0.0.1 1 2\r\n'))
    const error = await connectTo(teardown, front).then(
      () => undefined,
      (e: Error) => e
    )
    expect(error).to.be.instanceOf(Error)
    expect(seen).to.have.length(0)
  })

  it('tcp: the header and CONNECT in one chunk, or the header in pieces: the engine gets exactly the bytes after it', async () => {
    const { seen, listener } = await start({ kind: 'tcp', port: 0, proxyProtocol: true, trustedProxies: ['127.0.0.1'] })
    const connectBytes = (clientId: string) => encode({ type: 'connect', protocolLevel: 4, clean: true, keepalive: 30, clientId })
    const connack = (raw: ReturnType<typeof connect>) =>
      within(3000, 'CONNACK', new Promise<Buffer>((resolve) => raw.once('data', (chunk: Buffer) => resolve(chunk))))
    const header = Buffer.from(`PROXY TCP4 192.0.2.10 127.0.0.1 1111 ${listener.port}\r\n`)

    const together = connect({ host: '127.0.0.1', port: listener.port })
    teardown.defer(() => together.destroy())
    const first = connack(together)
    together.write(Buffer.concat([header, connectBytes('together')]))
    expect([...(await first)]).to.deep.equal([0x20, 0x02, 0x00, 0x00])

    const pieces = connect({ host: '127.0.0.1', port: listener.port, noDelay: true })
    teardown.defer(() => pieces.destroy())
    const second = connack(pieces)
    for (const piece of [header.subarray(0, 3), header.subarray(3, 20), header.subarray(20)]) {
      await new Promise<void>((resolve) => pieces.write(piece, () => setTimeout(resolve, 20)))
    }
    pieces.write(connectBytes('pieces'))
    expect([...(await second)]).to.deep.equal([0x20, 0x02, 0x00, 0x00])
    expect(seen.map((c) => [c.clientId, c.connection?.remoteAddress])).to.deep.equal([
      ['together', '192.0.2.10:1111'],
      ['pieces', '192.0.2.10:1111']
    ])
  })

  it('tcp: a trusted peer that never completes its header is closed after proxyTimeout', async () => {
    const { listener } = await start({ kind: 'tcp', port: 0, proxyProtocol: true, trustedProxies: ['127.0.0.1'], proxyTimeout: 200 })
    const raw = connect({ host: '127.0.0.1', port: listener.port })
    teardown.defer(() => raw.destroy())
    raw.write('PROXY TCP4 203.0.')
    await within(3000, 'closed by the listener', new Promise((resolve) => raw.once('close', resolve)))
  })

  for (const kind of ['ws', 'wss'] as const) {
    const tls = kind === 'wss' ? { tls: { key: '', cert: '' } } : {}
    const config = (trustedProxies: string[]): ListenerConfig => ({
      kind,
      port: 0,
      trustedProxies,
      ...(kind === 'wss' ? { tls: { ...tls.tls, key: certs.server.keyFile, cert: certs.server.certFile } } : {})
    })

    it(`${kind}: X-Forwarded-For from a trusted proxy gives the client's address; listener in events`, async () => {
      const { seen, events, listener } = await start(config(['127.0.0.1']))
      await connectTo(teardown, listener, { ca: certs.ca.cert, wsOptions: { headers: { 'X-Forwarded-For': '198.51.100.23' } } })
      expect(seen[0]!.connection).to.deep.include({ transport: kind, remoteAddress: '198.51.100.23', listener: listener.name })
      const connected = events.find((e) => e.type === 'client.connected')
      expect(connected).to.deep.include({ listener: listener.name })
      expect(connected?.client.remoteAddress).to.equal('198.51.100.23')
    })

    it(`${kind}: X-Forwarded-For from an untrusted peer is ignored`, async () => {
      const { seen, listener } = await start(config(['10.0.0.0/8']))
      await connectTo(teardown, listener, { ca: certs.ca.cert, wsOptions: { headers: { 'X-Forwarded-For': '198.51.100.23' } } })
      expect(seen[0]!.connection?.remoteAddress).to.match(/^127\.0\.0\.1:\d+$/)
    })
  }

  it('ws: through a chain of trusted proxies, the first untrusted hop from the right is the client', async () => {
    const { seen, listener } = await start({ kind: 'ws', port: 0, trustedProxies: ['127.0.0.1', '10.0.0.0/8'] })
    await connectTo(teardown, listener, { wsOptions: { headers: { 'X-Forwarded-For': '192.0.2.1, 198.51.100.23, 10.1.2.3' } } })
    // 192.0.2.1 is whatever the client claimed; 198.51.100.23 is what the first trusted proxy saw.
    expect(seen[0]!.connection?.remoteAddress).to.equal('198.51.100.23')
  })

  it('ws: a X-Forwarded-For with something other than addresses is ignored', async () => {
    const { seen, listener } = await start({ kind: 'ws', port: 0, trustedProxies: ['127.0.0.1'] })
    await connectTo(teardown, listener, { wsOptions: { headers: { 'X-Forwarded-For': 'evil, 198.51.100.23' } } })
    expect(seen[0]!.connection?.remoteAddress).to.match(/^127\.0\.0\.1:\d+$/)
  })
})
