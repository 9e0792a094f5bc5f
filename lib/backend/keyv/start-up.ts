import type { NodeContext } from './node-context.js'
import { BackendUnavailableError } from './redis-link.js'
import type { RedisClientLike } from './redis-link.js'

/**
 * The first connection of a node: the Redis client of the Keyv store (`@keyv/redis`), connected
 * within the connect timeout. `abortable` receives a function that gives the attempt up (the backend
 * was closed meanwhile); it is called again with `undefined` once the attempt is over. Rejects with
 * `BackendUnavailableError` (and destroys a client the backend made, which node-redis would keep
 * retrying), or a TypeError for a store or client this backend cannot use.
 */
export async function connectRedis(node: NodeContext, abortable: (abort: (() => void) | undefined) => void): Promise<RedisClientLike> {
  const store = node.keyv.store as { getClient?: () => Promise<unknown>; client?: unknown }
  if (typeof store.getClient !== 'function') throw new TypeError('KeyvBackend needs a Keyv whose store is @keyv/redis (createKeyv)')
  const connecting = store.getClient()
  connecting.catch(() => undefined)
  let timer: ReturnType<typeof setTimeout> | undefined
  let fail: (error: Error) => void = () => undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    fail = reject
    timer = setTimeout(() => reject(new BackendUnavailableError(`could not connect to Redis within ${node.connectTimeout} ms`)), node.connectTimeout)
  })
  abortable(() => fail(new BackendUnavailableError('the backend was closed while connecting')))
  let client: RedisClientLike
  try {
    client = (await Promise.race([connecting, timeout])) as RedisClientLike
  } catch (error) {
    // node-redis keeps retrying a refused first connection: stop a client this backend made.
    destroyOwnClient(node)
    node.log('error', `Redis unavailable at start-up (node ${node.nodeId}): ${error instanceof Error ? error.message : String(error)}`)
    throw error
  } finally {
    clearTimeout(timer)
    abortable(undefined)
  }
  if (typeof client.duplicate !== 'function' || typeof client.sendCommand !== 'function' || 'masters' in client) {
    throw new TypeError('KeyvBackend supports a standalone Redis client (Redis Cluster and Sentinel clients are not supported yet)')
  }
  return client
}

/** Stops a Redis client this backend made (for a Keyv passed in, its owner decides). */
function destroyOwnClient(node: NodeContext): void {
  if (!node.ownsKeyv) return
  try {
    ;(node.keyv.store as { client: RedisClientLike }).client.destroy()
  } catch {
    // not open
  }
}
