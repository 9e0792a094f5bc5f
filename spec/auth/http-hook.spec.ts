import { expect } from 'chai'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import mqtt from 'mqtt'
import type { MqttClient, Packet } from 'mqtt'
import { withAccessControl } from '../../lib/auth/access-backend.js'
import { HttpAuthHook } from '../../lib/auth/http-hook.js'
import type { HttpHookOptions } from '../../lib/auth/http-hook.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { useTeardown } from '../helpers/teardown.js'

type Body = Record<string, unknown>

describe('HTTP authentication hook', function () {
  this.timeout(20000)
  const teardown = useTeardown()
  let seen: Body[] = []
  let decide: (body: Body, res: ServerResponse) => void = () => undefined

  async function service(): Promise<{ url: string; server: Server }> {
    seen = []
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let text = ''
      req.on('data', (c: Buffer) => (text += c.toString()))
      req.on('end', () => {
        const body = JSON.parse(text) as Body
        seen.push(body)
        decide(body, res)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    teardown.add(server, (s) => new Promise<void>((resolve) => {
      s.closeAllConnections()
      s.close(() => resolve())
    }))
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth`, server }
  }

  const json = (res: ServerResponse, status: number, body?: object): void => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(body === undefined ? '' : JSON.stringify(body))
  }

  async function broker(options: HttpHookOptions): Promise<{ port: number; hook: HttpAuthHook }> {
    const hook = new HttpAuthHook(options)
    const b = teardown.add(
      new Broker({
        backend: withAccessControl(new MemoryBackend(), { authenticators: [hook], authorizers: [hook], bruteForce: false }),
        logger: silentLogger
      }),
      (x) => x.close()
    )
    return { port: (await b.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port, hook }
  }

  async function connect(port: number, username: string, password: string): Promise<MqttClient> {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, clientId: `c-${username}`, username, password, reconnectPeriod: 0 })
    teardown.defer(() => c.endAsync(true))
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve())
      c.once('error', reject)
    })
    return c
  }

  async function refusal(port: number, username: string, password: string): Promise<number | undefined> {
    return await connect(port, username, password).then(
      () => undefined,
      (e: { code?: number }) => e.code
    )
  }

  async function suback(c: MqttClient, topics: string[]): Promise<number[]> {
    return await new Promise((resolve) => {
      const onPacket = (packet: Packet): void => {
        if (packet.cmd !== 'suback') return
        c.off('packetreceive', onPacket)
        resolve(packet.granted as number[])
      }
      c.on('packetreceive', onPacket)
      c.subscribe(topics, { qos: 1 }, () => undefined)
    })
  }

  it('asks about CONNECT, SUBSCRIBE and PUBLISH; caches publish/subscribe answers', async () => {
    decide = (body, res) => {
      if (body.action === 'connect') return json(res, 200, { result: body.password === 'good' ? 'allow' : 'deny' })
      if (body.action === 'subscribe') return json(res, 200, { result: String(body.topic).startsWith('ok/') ? 'allow' : 'deny' })
      return body.topic === 'forbidden' ? json(res, 403) : json(res, 204)
    }
    const { url } = await service()
    const { port, hook } = await broker({ url })
    expect(await refusal(port, 'u', 'bad')).to.equal(0x87)
    const c = await connect(port, 'u', 'good')
    expect(seen.filter((b) => b.action === 'connect').map((b) => b.password)).to.deep.equal(['bad', 'good'])
    expect(seen[1]).to.deep.include({ clientid: 'c-u', username: 'u', protocol_level: 5 })
    expect(await suback(c, ['ok/a', 'no/b'])).to.deep.equal([1, 0x87])
    const refused = await c.publishAsync('forbidden', 'x', { qos: 1 }).then(
      () => 0,
      (e: { code?: number }) => e.code
    )
    expect(refused).to.equal(0x87)
    for (let i = 0; i < 3; i++) await c.publishAsync('ok/a', 'x', { qos: 1 })
    expect(seen.filter((b) => b.action === 'publish' && b.topic === 'ok/a')).to.have.length(1)
    expect(hook.stats.cacheHits).to.equal(2)
  })

  it('on timeout or a down service the fallback decides: deny by default, allow when configured', async () => {
    decide = () => undefined // never answers
    const { url, server } = await service()
    const closed = await broker({ url, timeoutMs: 200 })
    expect(await refusal(closed.port, 'u', 'x')).to.equal(0x87)
    expect(closed.hook.stats.failures).to.equal(1)
    const open = await broker({ url, timeoutMs: 200, onError: 'allow' })
    await connect(open.port, 'u', 'x')
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    // Down: connection refused.
    expect(await refusal(closed.port, 'v', 'x')).to.equal(0x87)
    await connect(open.port, 'v', 'x')
    expect(open.hook.stats.failures).to.equal(2)
  })

  it('a 5xx is a failure; a connect answer may name the user and bring ACL rules', async () => {
    decide = (body, res) => {
      if (body.username === 'broken') return json(res, 500)
      if (body.action === 'connect') return json(res, 200, { result: 'allow', username: 'mapped', acl: [{ filter: 'mapped/#', access: 'readwrite' }] })
      return json(res, 200, { result: 'ignore' })
    }
    const { url } = await service()
    const { port } = await broker({ url })
    expect(await refusal(port, 'broken', 'x')).to.equal(0x87)
    const c = await connect(port, 'someone', 'x')
    // 'ignore' from the hook: the ACL from the connect answer decides.
    expect(await suback(c, ['mapped/a', 'other/a'])).to.deep.equal([1, 0x87])
  })
})
