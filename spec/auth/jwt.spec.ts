import { expect } from 'chai'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose'
import type { CryptoKey, JWTPayload } from 'jose'
import mqtt from 'mqtt'
import type { IDisconnectPacket, MqttClient, Packet } from 'mqtt'
import { withAccessControl } from '../../lib/auth/access-backend.js'
import type { AuthRequest } from '../../lib/auth/authenticator.js'
import { JwtAuthenticator } from '../../lib/auth/jwt.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { useTeardown } from '../helpers/teardown.js'

const SECRET = 'a-long-enough-shared-secret'

function request(password: string | undefined, username = 'ignored'): AuthRequest {
  return {
    clientId: 'c1',
    username,
    password: password === undefined ? undefined : Buffer.from(password),
    tenant: undefined,
    protocolLevel: 5,
    connection: undefined
  }
}

async function sign(payload: JWTPayload, key: CryptoKey | Uint8Array, alg: string, kid?: string): Promise<string> {
  const jwt = new SignJWT(payload).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).setIssuedAt()
  return await jwt.sign(key)
}

describe('JWT authentication', function () {
  this.timeout(20000)
  let dir = ''
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'jwt-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('accepts HS256 tokens signed with the secret and maps the claims', async () => {
    const jwt = new JwtAuthenticator({ secret: SECRET, tenantClaim: 'org', aclClaim: 'mqtt.acl' })
    const token = await sign(
      { sub: 'alice', org: 'acme', mqtt: { acl: [{ filter: 'a/#', access: 'read' }] }, exp: Math.floor(Date.now() / 1000) + 60 },
      new TextEncoder().encode(SECRET),
      'HS256'
    )
    const verdict = await jwt.authenticate(request(token))
    expect(verdict.result).to.equal('allow')
    if (verdict.result !== 'allow') return
    expect(verdict.identity?.username).to.equal('alice')
    expect(verdict.identity?.tenant).to.equal('acme')
    expect(verdict.identity?.acl).to.deep.equal([{ filter: 'a/#', access: 'read' }])
    expect(verdict.identity?.expiresAt).to.be.a('number')
  })

  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    it(`accepts ${alg} tokens with a PEM public key, refuses one signed by another key`, async () => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
      const other = await generateKeyPair(alg)
      const file = join(dir, 'key.pem')
      writeFileSync(file, await exportSPKI(publicKey))
      const jwt = new JwtAuthenticator({ publicKeyFile: file })
      expect((await jwt.authenticate(request(await sign({ sub: 'bob' }, privateKey, alg)))).result).to.equal('allow')
      const forged = await jwt.authenticate(request(await sign({ sub: 'bob' }, other.privateKey, alg)))
      expect(forged).to.deep.include({ result: 'deny', reasonCode: 0x86 })
    })
  }

  it('picks keys from a JWKS file by kid, and reloads it', async () => {
    const one = await generateKeyPair('ES256', { extractable: true })
    const two = await generateKeyPair('ES256', { extractable: true })
    const file = join(dir, 'jwks.json')
    const jwk = async (k: CryptoKey, kid: string): Promise<object> => ({ ...(await exportJWK(k)), kid, alg: 'ES256' })
    writeFileSync(file, JSON.stringify({ keys: [await jwk(one.publicKey, 'one')] }))
    const jwt = new JwtAuthenticator({ jwksFile: file })
    expect((await jwt.authenticate(request(await sign({ sub: 'x' }, one.privateKey, 'ES256', 'one')))).result).to.equal('allow')
    const later = await sign({ sub: 'x' }, two.privateKey, 'ES256', 'two')
    expect((await jwt.authenticate(request(later))).result).to.equal('deny')
    writeFileSync(file, JSON.stringify({ keys: [await jwk(one.publicKey, 'one'), await jwk(two.publicKey, 'two')] }))
    jwt.reload()
    expect((await jwt.authenticate(request(later))).result).to.equal('allow')
  })

  it('refuses expired tokens, wrong algorithms, issuers and bad claims; ignores non-JWT passwords', async () => {
    const key = new TextEncoder().encode(SECRET)
    const jwt = new JwtAuthenticator({ secret: SECRET, algorithms: ['HS256'], issuer: 'us', aclClaim: 'acl' })
    const expired = await sign({ sub: 'a', iss: 'us', exp: Math.floor(Date.now() / 1000) - 10 }, key, 'HS256')
    expect(await jwt.authenticate(request(expired))).to.deep.equal({ result: 'deny', reasonCode: 0x86, reasonString: 'token expired' })
    expect((await jwt.authenticate(request(await sign({ sub: 'a', iss: 'us' }, key, 'HS384')))).result).to.equal('deny')
    expect((await jwt.authenticate(request(await sign({ sub: 'a', iss: 'them' }, key, 'HS256')))).result).to.equal('deny')
    expect((await jwt.authenticate(request(await sign({ sub: 'a', iss: 'us', acl: [{ filter: 'a/#/b', access: 'read' }] }, key, 'HS256')))).result).to.equal('deny')
    expect(await jwt.authenticate(request('plain password'))).to.deep.equal({ result: 'ignore' })
    expect(await jwt.authenticate(request(undefined))).to.deep.equal({ result: 'ignore' })
    expect(() => new JwtAuthenticator({ secret: 'short' })).to.throw(TypeError)
    expect(() => new JwtAuthenticator({})).to.throw(TypeError)
  })

  describe('over TCP with MQTT.js', () => {
    const teardown = useTeardown()

    async function start(): Promise<number> {
      const jwt = new JwtAuthenticator({ secret: SECRET, aclClaim: 'acl' })
      const broker = teardown.add(
        new Broker({ backend: withAccessControl(new MemoryBackend(), { authenticators: [jwt], bruteForce: false }), logger: silentLogger }),
        (b) => b.close()
      )
      return (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    }

    async function connect(port: number, version: 4 | 5, password: string): Promise<MqttClient> {
      const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: version, clientId: `j${version}`, username: 'jwt', password, reconnectPeriod: 0 })
      teardown.defer(() => c.endAsync(true))
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve())
        c.once('error', reject)
      })
      return c
    }

    it('closes the connection when the token expires: MQTT 5 DISCONNECT 0xA0, 3.1.1 a closed socket; claims give ACL rules', async () => {
      const port = await start()
      const key = new TextEncoder().encode(SECRET)
      const exp = Math.floor(Date.now() / 1000) + 2
      const token = await sign({ sub: 'dev', exp, acl: [{ filter: 'dev/#', access: 'readwrite' }] }, key, 'HS256')
      const v5 = await connect(port, 5, token)
      const v4 = await connect(port, 4, token)
      const granted = await new Promise<number[]>((resolve) => {
        const onPacket = (packet: Packet): void => {
          if (packet.cmd !== 'suback') return
          v5.off('packetreceive', onPacket)
          resolve(packet.granted as number[])
        }
        v5.on('packetreceive', onPacket)
        v5.subscribe(['dev/x', 'other/x'], { qos: 0 }, () => undefined)
      })
      expect(granted).to.deep.equal([0, 0x87])
      const disconnect = new Promise<IDisconnectPacket>((resolve) => v5.once('disconnect', resolve))
      const closed = new Promise<void>((resolve) => v4.once('close', () => resolve()))
      const packet = await disconnect
      expect(packet.reasonCode).to.equal(0xa0)
      await closed
      expect(Date.now()).to.be.at.least(exp * 1000)
    })
  })
})
