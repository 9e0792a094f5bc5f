import { randomBytes } from 'node:crypto'
import { backendConformance } from '../../../lib/backend/conformance/index.js'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'

// One redis-server for this file; each case gets a fresh backend under its own random key root, so
// cases never see each other's keys.
// (Hooks inside a describe: at the top level they would run around every spec file of the run.)
describe('KeyvBackend on a real redis-server', () => {
  let server: RedisServer | undefined

  before(async () => {
    server = await startRedisServer()
  })

  after(async () => {
    await server?.dispose()
  })

  backendConformance(
    'KeyvBackend',
    async () => {
      if (server === undefined) throw new Error('redis-server did not start')
      const backend = new KeyvBackend({
        url: server.url,
        prefix: `c${randomBytes(4).toString('hex')}`,
        maxQueuedMessages: 5,
        maxRetainedMessages: 8,
        // The suite asserts publish counts at QoS 0 too.
        awaitQos0: true,
        log: () => undefined
      })
      await backend.ready()
      return backend
    },
    { maxQueuedMessages: 5, maxRetainedMessages: 8, settleMs: 30, timeoutMs: 3000, tenants: true }
  )
})
