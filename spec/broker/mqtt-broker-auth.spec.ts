/**
 * Access control of the `mqtt-broker` process configured from a file (`auth:`): MQTT.js at 3.1.1
 * and 5.0 and mosquitto_pub / mosquitto_sub with -u -P, a Mosquitto password file read as-is, ACL
 * refusals with their codes, a `#` subscriber that never receives a denied topic, and a user added
 * with `mqtt-broker passwd` while the broker runs, then SIGHUP.
 */
import { expect } from 'chai'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient, Packet } from 'mqtt'
import { BIN, listeningOn, portOf, startBroker, waitForOutput } from '../helpers/broker-process.js'
import type { BrokerProcess } from '../helpers/broker-process.js'
import { Teardown, useTeardown } from '../helpers/teardown.js'

const CONFIG = `listeners:
  - { name: mqtt, kind: tcp, port: 0 }
log: { level: info, format: json }
auth:
  password_file: users
  brute_force: false
  acl:
    - { filter: "open/#", access: readwrite }
    - { filter: "open/secret/#", access: deny, user: alice }
    - { filter: "users/%u/#", access: readwrite }
`

describe('bin/mqtt-broker – auth: section (password file, ACL, passwd, SIGHUP)', function () {
  this.timeout(30000)
  const teardown = useTeardown()
  const process$ = new Teardown()
  let dir = ''
  let users = ''
  let broker: BrokerProcess
  let url = ''

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mqtt-auth-cli-'))
    users = join(dir, 'users')
    // A password file as Mosquitto writes it ($7$, PBKDF2-SHA512), read as-is.
    for (const [user, password] of [['alice', 'alice-pw'], ['bob', 'bob-pw']]) {
      const made = spawnSync('mosquitto_passwd', [...(user === 'alice' ? ['-c'] : []), '-b', users, user!, password!])
      expect(made.status, made.stderr?.toString()).to.equal(0)
    }
    await writeFile(join(dir, 'broker.yaml'), CONFIG)
    broker = startBroker(['--config', join(dir, 'broker.yaml')], { teardown: process$ })
    url = `mqtt://127.0.0.1:${portOf((await listeningOn(broker, 1))[0]!)}`
  })
  after(async () => {
    await process$.run()
    await rm(dir, { recursive: true, force: true })
  })

  /** The CONNACK code of a connection attempt (0: accepted; the client is then closed by teardown). */
  function connackCode(options: IClientOptions): Promise<{ code: number; client: MqttClient }> {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10000, ...options })
    teardown.defer(() => client.endAsync(true))
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve({ code: 0, client }))
      client.once('error', (error: Error & { code?: number }) => (typeof error.code === 'number' ? resolve({ code: error.code, client }) : reject(error)))
    })
  }

  async function connected(options: IClientOptions): Promise<MqttClient> {
    const { code, client } = await connackCode(options)
    expect(code).to.equal(0)
    return client
  }

  it('MQTT.js 3.1.1: a Mosquitto-hashed user connects; a wrong password gets 4, no credentials 5', async () => {
    expect((await connackCode({ protocolVersion: 4, username: 'alice', password: 'alice-pw' })).code).to.equal(0)
    expect((await connackCode({ protocolVersion: 4, username: 'alice', password: 'wrong' })).code).to.equal(4)
    expect((await connackCode({ protocolVersion: 4, username: 'nobody', password: 'x' })).code).to.equal(4)
    expect((await connackCode({ protocolVersion: 4 })).code).to.equal(5)
  })

  it('MQTT.js 5.0: a wrong password gets 0x86, no credentials 0x87', async () => {
    expect((await connackCode({ protocolVersion: 5, username: 'bob', password: 'bob-pw' })).code).to.equal(0)
    expect((await connackCode({ protocolVersion: 5, username: 'bob', password: 'wrong' })).code).to.equal(0x86)
    expect((await connackCode({ protocolVersion: 5 })).code).to.equal(0x87)
  })

  /** The return / reason codes of one SUBACK, as sent (MQTT.js rejects a SUBACK holding a refusal). */
  function suback(client: MqttClient, filters: string[]): Promise<number[]> {
    return new Promise((resolve) => {
      const onPacket = (packet: Packet): void => {
        if (packet.cmd !== 'suback') return
        client.off('packetreceive', onPacket)
        resolve([...(packet as Packet & { granted: number[] }).granted])
      }
      client.on('packetreceive', onPacket)
      client.subscribe(filters, { qos: 1 }, () => undefined)
    })
  }

  it('a subscription refused by ACL: SUBACK 0x80 at 3.1.1, 0x87 at 5.0; allowed ones granted', async () => {
    const v4 = await connected({ protocolVersion: 4, username: 'alice', password: 'alice-pw' })
    expect(await suback(v4, ['closed/x', 'open/secret/#', 'users/alice/#'])).to.deep.equal([0x80, 0x80, 1])
    const v5 = await connected({ protocolVersion: 5, username: 'alice', password: 'alice-pw' })
    expect(await suback(v5, ['closed/x', 'users/bob/#', 'open/a'])).to.deep.equal([0x87, 0x87, 1])
  })

  it('a # subscriber never receives a topic it may not read', async () => {
    const alice = await connected({ protocolVersion: 5, username: 'alice', password: 'alice-pw', clientId: 'alice-hash' })
    const got: string[] = []
    alice.on('message', (topic) => got.push(topic))
    expect((await alice.subscribeAsync('#', { qos: 1 }))[0]!.qos).to.equal(1)
    const bob = await connected({ protocolVersion: 5, username: 'bob', password: 'bob-pw' })
    // One publisher, QoS 1, in order: once the last arrives, the denied ones were never delivered.
    await bob.publishAsync('open/secret/plans', 'no', { qos: 1 })
    await bob.publishAsync('users/bob/private', 'no', { qos: 1 })
    await bob.publishAsync('open/news', 'yes', { qos: 1 })
    const deadline = Date.now() + 10000
    while (!got.includes('open/news') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(got).to.deep.equal(['open/news'])
  })

  it('mosquitto_sub / mosquitto_pub -u -P: allowed, and refused with a wrong password', async () => {
    const port = String(portOf(url))
    const common = ['-h', '127.0.0.1', '-p', port]
    // A retained message, so that the subscriber gets it whenever its subscription lands.
    const pub = spawnSync('mosquitto_pub', [...common, '-V', 'mqttv5', '-u', 'bob', '-P', 'bob-pw', '-t', 'open/hello', '-m', 'from-mosquitto', '-q', '1', '-r'])
    expect(pub.status, pub.stderr.toString()).to.equal(0)
    teardown.defer(() => spawnSync('mosquitto_pub', [...common, '-u', 'bob', '-P', 'bob-pw', '-t', 'open/hello', '-r', '-n']))
    const sub = spawnSync('mosquitto_sub', [...common, '-V', 'mqttv311', '-u', 'alice', '-P', 'alice-pw', '-t', 'open/#', '-C', '1', '-W', '10'])
    expect(sub.status, sub.stderr.toString()).to.equal(0)
    expect(sub.stdout.toString().trim()).to.equal('from-mosquitto')
    const refused = spawnSync('mosquitto_pub', [...common, '-V', 'mqttv311', '-u', 'bob', '-P', 'wrong', '-t', 'open/x', '-m', 'x'])
    expect(refused.status).to.not.equal(0)
    expect(refused.stderr.toString()).to.match(/bad user name or password|not authori[sz]ed/i)
    // A denied topic is not delivered to mosquitto_sub either: alice may not read open/secret/.
    const denied = spawnSync('mosquitto_sub', [...common, '-V', 'mqttv5', '-u', 'alice', '-P', 'alice-pw', '-t', 'open/secret/#', '-C', '1', '-W', '2'])
    expect(denied.stdout.toString()).to.equal('')
  })

  it('a user added with `mqtt-broker passwd` connects after SIGHUP, without dropping connections', async () => {
    const carol = { protocolVersion: 5 as const, username: 'carol', password: 'carol-pw' }
    const bystander = await connected({ protocolVersion: 5, username: 'bob', password: 'bob-pw' })
    expect((await connackCode(carol)).code).to.equal(0x86)
    const passwd = spawn(process.execPath, ['--import', 'tsx', BIN, 'passwd', users, 'carol'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let err = ''
    passwd.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
    passwd.stdin.end('carol-pw\n')
    expect(await new Promise<number | null>((resolve) => passwd.once('exit', resolve)), err).to.equal(0)
    // Not yet: the running broker re-reads its files on SIGHUP only.
    expect((await connackCode(carol)).code).to.equal(0x86)
    broker.child.kill('SIGHUP')
    await waitForOutput(broker, /access-control files reloaded/, 15000, 'stderr')
    expect((await connackCode(carol)).code).to.equal(0)
    expect(bystander.connected).to.equal(true)
    // The old users are still there, in their Mosquitto hashes.
    expect((await connackCode({ protocolVersion: 4, username: 'alice', password: 'alice-pw' })).code).to.equal(0)
  })
})
