import assert from 'node:assert/strict'
import type { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { randomRoot, startNode } from './nodes.js'

// The start-up warning about Redis persistence (the CLI logs what checkDurability answers).
describe('KeyvBackend – checkDurability', function () {
  this.timeout(15_000)
  let server: RedisServer
  let node: KeyvBackend

  before(async () => {
    server = await startRedisServer()
    node = await startNode(server.url, randomRoot())
  })

  after(async () => {
    await node.close()
    await server.dispose()
  })

  async function config(...args: string[]): Promise<void> {
    const client = (node.keyv.store as { client: { sendCommand(args: string[]): Promise<unknown> } }).client
    await client.sendCommand(['CONFIG', 'SET', ...args])
  }

  it('warns when persistence is off, RDB only or AOF without fsync; not with AOF everysec/always', async () => {
    // The harness starts redis-server with --save '' --appendonly no.
    assert.match((await node.checkDurability()) ?? '', /persistence is off/)
    await config('save', '900 1')
    assert.match((await node.checkDurability()) ?? '', /RDB snapshots only \(save "900 1"\)/)
    await config('appendonly', 'yes')
    assert.equal(await node.checkDurability(), undefined)
    await config('appendfsync', 'always')
    assert.equal(await node.checkDurability(), undefined)
    await config('appendfsync', 'no')
    assert.match((await node.checkDurability()) ?? '', /appendfsync no/)
    await config('appendonly', 'no', 'save', '')
  })

  it('rejects with BackendUnavailableError once closed', async () => {
    const other = await startNode(server.url, randomRoot())
    await other.close()
    await assert.rejects(other.checkDurability(), { name: 'BackendUnavailableError' })
  })
})
