/**
 * `RedisUserStore.close()` leaves nothing running: a process that built a store and closed it ends
 * by itself, whether the store never reached Redis or lost it in an outage. (node-redis waits
 * between reconnection attempts on a timer that `destroy()` does not clear: up to ~2.2 s during
 * which the closed store still held the process.)
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/user-store-close.ts', import.meta.url))

/** A child process of fixtures/user-store-close.ts. */
interface Child {
  process: ChildProcess
  /** Resolves once stdout holds a line matching `pattern` (its match). */
  line(pattern: RegExp, ms?: number): Promise<RegExpExecArray>
  /** Resolves with the exit code once the process exited by itself; rejects after `ms`. */
  exited(ms: number): Promise<number | null>
}

function spawnStore(url: string, env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { env: { ...process.env, REDIS_URL: url, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    process: child,
    line: (pattern, ms = 20_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${String(pattern)} within ${ms} ms; stdout: ${stdout}; stderr: ${stderr}`)), ms)
        const check = (): void => {
          const match = pattern.exec(stdout)
          if (match === null) return
          clearTimeout(timer)
          child.stdout.off('data', check)
          resolve(match)
        }
        child.stdout.on('data', check)
        check()
      }),
    exited: (ms) =>
      Promise.race([
        exit,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running ${ms} ms after close(); stdout: ${stdout}`)), ms).unref())
      ])
  }
}

/** A TCP server on 127.0.0.1 that counts connection attempts and ends each at once (a Redis that fails every handshake). */
async function attemptCounter(port = 0): Promise<{ server: Server; port: number; attempts(n: number): Promise<void> }> {
  let count = 0
  let waiting: { n: number; resolve: () => void } | undefined
  const server = createServer((socket: Socket) => {
    count++
    socket.destroy()
    if (waiting !== undefined && count >= waiting.n) waiting.resolve()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  const address = server.address()
  return {
    server,
    port: typeof address === 'object' && address !== null ? address.port : 0,
    attempts: (n) => (count >= n ? Promise.resolve() : new Promise((resolve) => (waiting = { n, resolve })))
  }
}

describe('access control – RedisUserStore.close() leaves nothing running', function () {
  this.timeout(60000)
  const teardown = useTeardown()

  const track = (child: Child): Child =>
    teardown.add(child, (c) => {
      if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL')
    })

  /** Asks the child to close its store; the active resources it reports then. */
  async function close(child: Child): Promise<string[]> {
    child.process.stdin?.end('close\n')
    const [, json] = await child.line(/closed (\[.*\])\n/)
    return JSON.parse(json!) as string[]
  }

  it('a store that never reached Redis (a CONNECT waiting for it): no timer after close(), the process ends by itself', async () => {
    const redis = await attemptCounter()
    teardown.add(redis.server, (s) => s.close())
    const child = track(spawnStore(`redis://127.0.0.1:${redis.port}`, { ASK: '1' }))
    await child.line(/started\n/)
    // Several failed attempts: the back-off between attempts is near a second by now.
    await redis.attempts(8)
    const active = await close(child)
    expect(active).to.not.include('Timeout')
    expect(await child.exited(10_000)).to.equal(0)
  })

  it('a store that lost Redis in an outage: no timer after close(), the process ends by itself', async () => {
    const server: RedisServer = teardown.add(await startRedisServer(), (s) => s.dispose())
    const child = track(spawnStore(server.url))
    await child.line(/ready\n/)
    await server.stop()
    // The same port, now failing every attempt: the store is retrying.
    const redis = await attemptCounter(server.port)
    teardown.add(redis.server, (s) => s.close())
    await redis.attempts(8)
    const active = await close(child)
    expect(active).to.not.include('Timeout')
    expect(await child.exited(10_000)).to.equal(0)
  })
})
