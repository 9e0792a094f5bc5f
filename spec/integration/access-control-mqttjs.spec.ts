/**
 * Access control seen by real clients: MQTT.js at 3.1.1 and 5.0 over TCP against a broker whose
 * MemoryBackend is wrapped by `withAccessControl` (a password file, connection rules, ACL rules),
 * and mosquitto_pub / mosquitto_sub with -u -P.
 */
import { expect } from 'chai'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient, Packet } from 'mqtt'
import { withAccessControl } from '../../lib/auth/access-backend.js'
import type { AccessControlOptions } from '../../lib/auth/access-control.js'
import { PasswordFile } from '../../lib/auth/password-file.js'
import { hashPassword } from '../../lib/auth/password-hash.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { byUsernameDomain } from '../../lib/tenancy/resolvers.js'
import type { TenantResolver } from '../../lib/tenancy/resolvers.js'
import { useTeardown } from '../helpers/teardown.js'

describe('access control – MQTT.js and mosquitto clients over TCP', function () {
  this.timeout(20000)
  const teardown = useTeardown()
  let dir = ''
  let passwordFile = ''
  let port = 0

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'acl-it-'))
    passwordFile = join(dir, 'users')
    // alice and bob in our format; carol as Mosquitto wrote her.
    writeFileSync(passwordFile, `alice:${await hashPassword('alice-pw')}\nbob:${await hashPassword('bob-pw')}\n`)
    const made = spawnSync('mosquitto_passwd', ['-b', passwordFile, 'carol', 'carol-pw'])
    expect(made.status, made.stderr?.toString()).to.equal(0)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const rules: AccessControlOptions = {
    connectionRules: [{ action: 'deny', client_id: 'banned-*' }],
    acl: [
      { filter: 'open/#', access: 'readwrite' },
      { filter: 'open/secret/#', access: 'deny' },
      { filter: 'users/%u/#', access: 'readwrite' },
      { filter: 'devices/%c/#', access: 'write' }
    ]
  }

  async function start(options: AccessControlOptions = rules, tenantResolver?: TenantResolver): Promise<Broker> {
    const users = new PasswordFile(passwordFile)
    const backend = tenantResolver === undefined ? new MemoryBackend() : new TenantBackend(() => new MemoryBackend())
    const broker = teardown.add(
      new Broker({
        backend: withAccessControl(backend, { authenticators: [users], bruteForce: false, ...options }),
        logger: silentLogger,
        ...(tenantResolver === undefined ? {} : { tenantResolver })
      }),
      (b) => b.close()
    )
    port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    return broker
  }

  /** Connect; resolves with the client, or rejects with MQTT.js's error (its `code` is the CONNACK code). */
  async function connect(options: IClientOptions): Promise<MqttClient> {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 5000, ...options })
    teardown.defer(() => c.endAsync(true))
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve())
      c.once('error', reject)
    })
    return c
  }

  /** SUBSCRIBE and resolve with the SUBACK's codes (MQTT.js rejects on any failure code). */
  async function suback(c: MqttClient, topics: string[], qos: 0 | 1 = 0): Promise<number[]> {
    return await new Promise((resolve) => {
      const onPacket = (packet: Packet): void => {
        if (packet.cmd !== 'suback') return
        c.off('packetreceive', onPacket)
        resolve(packet.granted as number[])
      }
      c.on('packetreceive', onPacket)
      c.subscribe(topics, { qos }, () => undefined)
    })
  }

  async function refusal(options: IClientOptions): Promise<number | undefined> {
    try {
      await connect(options)
    } catch (error) {
      return (error as { code?: number }).code
    }
    throw new Error('connected')
  }

  for (const version of [4, 5] as const) {
    const v = { protocolVersion: version }
    const [badUser, notAuthorized, subFail] = version === 5 ? [0x86, 0x87, 0x87] : [4, 5, 0x80]

    describe(`MQTT ${version === 5 ? '5.0' : '3.1.1'}`, () => {
      it(`allows good passwords and refuses bad ones with ${badUser}, anonymous and ruled-out clients with ${notAuthorized}`, async () => {
        await start()
        await connect({ ...v, clientId: 'a1', username: 'alice', password: 'alice-pw' })
        await connect({ ...v, clientId: 'c1', username: 'carol', password: 'carol-pw' })
        expect(await refusal({ ...v, clientId: 'a2', username: 'alice', password: 'wrong' })).to.equal(badUser)
        expect(await refusal({ ...v, clientId: 'x1', username: 'nobody', password: 'alice-pw' })).to.equal(badUser)
        expect(await refusal({ ...v, clientId: 'anon' })).to.equal(notAuthorized)
        expect(await refusal({ ...v, clientId: 'banned-7', username: 'alice', password: 'alice-pw' })).to.equal(notAuthorized)
      })

      it(`refuses a subscription inside a denied area (SUBACK ${subFail}) and allows a # that covers it`, async () => {
        await start()
        const c = await connect({ ...v, clientId: 'a1', username: 'alice', password: 'alice-pw' })
        expect(await suback(c, ['open/secret/#', '#', 'users/bob/#', 'users/alice/#'], 1)).to.deep.equal([subFail, 1, subFail, 1])
      })

      it('a # subscriber never receives a denied topic; %u and %c rules', async () => {
        await start()
        const sub = await connect({ ...v, clientId: 'sub', username: 'alice', password: 'alice-pw' })
        const got: string[] = []
        sub.on('message', (topic) => got.push(topic))
        expect(await suback(sub, ['#'], 1)).to.deep.equal([1])
        const bob = await connect({ ...v, clientId: 'dev9', username: 'bob', password: 'bob-pw' })
        const alice = await connect({ ...v, clientId: 'sub2', username: 'alice', password: 'alice-pw' })
        const publish = async (c: MqttClient, topic: string): Promise<void> => {
          // MQTT 5 answers a refused publish with PUBACK 0x87 (a rejection here); 3.1.1 acknowledges it.
          await c.publishAsync(topic, topic, { qos: 1 }).catch(() => undefined)
        }
        // The deny inside the allowed area; alice's own area written by bob; bob's own; bob's device.
        for (const topic of ['open/secret/a', 'users/alice/x', 'users/bob/x', 'devices/dev9/y']) await publish(bob, topic)
        await publish(alice, 'users/alice/z')
        await publish(bob, 'open/last')
        const deadline = Date.now() + 5000
        while (!got.includes('open/last') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
        expect(got).to.deep.equal(['users/alice/z', 'open/last'])
      })

      if (version === 5) {
        it('a refused PUBLISH gets PUBACK 0x87', async () => {
          await start()
          const c = await connect({ ...v, clientId: 'a1', username: 'alice', password: 'alice-pw' })
          const error = await c.publishAsync('open/secret/x', 'no', { qos: 1 }).then(
            () => undefined,
            (e: { code?: number }) => e
          )
          expect(error?.code).to.equal(0x87)
        })
      }
    })
  }

  it('%t: tenants from user@tenant, rules per tenant', async () => {
    await start(
      {
        acl: [
          { filter: 'shared/%t/#', access: 'readwrite' },
          { filter: 'acme-only/#', access: 'readwrite', tenant: 'acme' }
        ]
      },
      byUsernameDomain()
    )
    const c = await connect({ protocolVersion: 5, clientId: 'a1', username: 'alice@acme', password: 'alice-pw' })
    expect(await suback(c, ['shared/acme/#', 'shared/other/#', 'acme-only/x'])).to.deep.equal([0, 0x87, 0])
    const d = await connect({ protocolVersion: 5, clientId: 'b1', username: 'bob@beta', password: 'bob-pw' })
    expect(await suback(d, ['shared/beta/#', 'acme-only/x'])).to.deep.equal([0, 0x87])
  })

  it('mosquitto_sub / mosquitto_pub with -u -P: a Mosquitto-hashed user reads, a bad password is refused', async () => {
    await start()
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'carol', '-P', 'carol-pw', '-t', '#', '-C', '1', '-V', 'mqttv311', '-i', 'msub'])
    teardown.defer(() => {
      if (sub.exitCode === null) sub.kill()
    })
    let out = ''
    sub.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((resolve) => sub.once('exit', resolve))
    const pub = await connect({ protocolVersion: 4, clientId: 'p', username: 'alice', password: 'alice-pw' })
    // Publish until the subscriber (connecting on its own) has it: denied first, then allowed.
    const timer = setInterval(() => {
      void pub.publishAsync('open/secret/x', 'hidden', { qos: 0 })
      void pub.publishAsync('open/x', 'visible', { qos: 0 })
    }, 50)
    teardown.defer(() => clearInterval(timer))
    expect(await exited).to.equal(0)
    expect(out.trim()).to.equal('visible')
    // Asynchronously: the broker answers from this very process.
    const bad = spawn('mosquitto_pub', ['-d', '-h', '127.0.0.1', '-p', String(port), '-u', 'carol', '-P', 'wrong', '-t', 'open/x', '-m', 'x'])
    teardown.defer(() => {
      if (bad.exitCode === null) bad.kill()
    })
    let badOut = ''
    bad.stdout.on('data', (d: Buffer) => (badOut += d.toString()))
    bad.stderr.on('data', (d: Buffer) => (badOut += d.toString()))
    expect(await new Promise((resolve) => bad.once('exit', resolve))).to.not.equal(0)
    // -d prints the CONNACK: return code 4, bad user name or password.
    expect(badOut).to.match(/received CONNACK \(4\)/)
  })
})
