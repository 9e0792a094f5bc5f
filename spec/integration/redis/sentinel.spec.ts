import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import KeyvRedis, { createSentinel } from '@keyv/redis'
import Keyv from 'keyv'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { freePort, startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'

// What docs/redis-backend.md says about Sentinel, checked against a real Sentinel: @keyv/redis 5
// accepts a node-redis Sentinel client (and reaches the master through it), the backend refuses it
// at start with a TypeError that names Sentinel, and nothing is left running or unhandled.
describe('KeyvBackend – a Keyv over Redis Sentinel', function () {
  this.timeout(30_000)
  let server: RedisServer
  let sentinelProcess: ChildProcess | undefined
  let sentinelPort: number

  before(async () => {
    server = await startRedisServer()
    sentinelPort = await freePort()
    const conf = join(server.dir, 'sentinel.conf')
    writeFileSync(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${server.dir}`, `sentinel monitor spec 127.0.0.1 ${server.port} 1`, ''].join('\n'))
    const proc = spawn('redis-server', [conf, '--sentinel', '--logfile', join(server.dir, 'sentinel.log')], { stdio: 'ignore' })
    sentinelProcess = proc
    // Ready once it names the master it monitors.
    const probe = createSentinel({ name: 'spec', sentinelRootNodes: [{ host: '127.0.0.1', port: sentinelPort }] })
    probe.on('error', () => undefined)
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        await probe.connect()
        break
      } catch (error) {
        if (proc.exitCode !== null || Date.now() > deadline) throw error
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    await probe.close()
  })

  after(async () => {
    const proc = sentinelProcess
    if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGTERM')
      await exited
    }
    await server.dispose()
  })

  it('is refused at start with a TypeError naming Sentinel, though Keyv itself works over it', async () => {
    const sentinel = createSentinel({ name: 'spec', sentinelRootNodes: [{ host: '127.0.0.1', port: sentinelPort }] })
    sentinel.on('error', () => undefined)
    const keyv = new Keyv({ store: new KeyvRedis(sentinel) })
    try {
      // Keyv over the Sentinel client reaches the master.
      await keyv.set('sentinel-probe', 'yes')
      assert.equal(await keyv.get('sentinel-probe'), 'yes')
      const backend = new KeyvBackend({ keyv, log: () => undefined })
      await assert.rejects(backend.ready(), (error: unknown) => error instanceof TypeError && /Sentinel/.test(error.message))
      await backend.close()
      // The Keyv passed in is the caller's: still usable after the backend gave up.
      assert.equal(await keyv.get('sentinel-probe'), 'yes')
    } finally {
      await keyv.disconnect()
    }
  })
})
