import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Options of `startRedisServer`. */
export interface RedisServerOptions {
  /** Port to listen on (default: a free loopback port). Restarts reuse the same port. */
  port?: number
  /** Turn AOF persistence on (`appendfsync everysec`), for durability specs (default off). */
  appendonly?: boolean
  /** How long to wait for the server to answer PING (ms, default 5000). */
  startTimeoutMs?: number
}

/**
 * A `redis-server` this test process started: on 127.0.0.1, a free port, its own temporary
 * directory, `--save ''` and (unless asked) `--appendonly no`. Stopped by its pid, never by name.
 */
export interface RedisServer {
  readonly host: '127.0.0.1'
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** The pid of the running server, or undefined while stopped. */
  readonly pid: number | undefined
  /** The temporary directory holding the server's files (AOF, logs). */
  readonly dir: string
  /** Stops the server (SIGTERM, then SIGKILL after 3 s); resolves once the process exited. */
  stop(): Promise<void>
  /** Kills the server at once (SIGKILL), as a crash would. */
  kill(): Promise<void>
  /** Starts the server again on the same port and directory (after `stop` or `kill`). */
  restart(): Promise<void>
  /** Stops the server if running and removes its directory. */
  dispose(): Promise<void>
}

const INSTALL_HINT =
  'redis-server was not found on the PATH. The Redis integration specs need a real redis-server: ' +
  'install it with `apt-get install redis-server` (Debian/Ubuntu; `scripts/ensure-system.sh` does it when run as root) ' +
  'or `brew install redis` (macOS).'

/** Throws an error explaining how to install redis-server when it is not on the PATH. */
export function requireRedisServer(): void {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' })
  if (probe.error !== undefined || probe.status !== 0) throw new Error(INSTALL_HINT)
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** Sends PING and resolves true when the answer is +PONG. */
async function ping(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let data = ''
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.on('data', (chunk) => {
      data += chunk.toString()
      if (data.includes('\r\n')) done(data.startsWith('+PONG'))
    })
    socket.once('connect', () => socket.write('PING\r\n'))
  })
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts a real `redis-server` for a spec file. Fails (never skips) with installation instructions
 * when the binary is missing.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  requireRedisServer()
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'mq-redis-'))
  const timeout = options.startTimeoutMs ?? 5000
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const launch = async (): Promise<void> => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--logfile',
      join(dir, 'redis.log')
    ]
    if (options.appendonly === true) args.push('--appendonly', 'yes', '--appendfsync', 'everysec')
    else args.push('--appendonly', 'no')
    const proc = spawn('redis-server', args, { stdio: 'ignore' })
    child = proc
    exited = new Promise((resolve) => proc.once('exit', () => resolve()))
    let failed: Error | undefined
    proc.once('error', (error) => (failed = error))
    const deadline = Date.now() + timeout
    while (Date.now() < deadline) {
      if (failed !== undefined) throw failed
      if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode}; see ${dir}/redis.log`)
      if (await ping(port)) return
      await sleep(25)
    }
    proc.kill('SIGKILL')
    throw new Error(`redis-server did not answer PING on port ${port} within ${timeout} ms`)
  }

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill(sig)
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
    child = undefined
  }

  await launch()
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid
    },
    dir,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    restart: async () => {
      await signal('SIGTERM')
      await launch()
    },
    dispose: async () => {
      await signal('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * A redis-server for one `describe` block: started in its `before` hook, disposed in its `after`
 * hook. The returned object stands for the server once `before` ran (reading it earlier throws).
 */
export function useRedisServer(options: RedisServerOptions = {}): RedisServer {
  let server: RedisServer | undefined
  const started = (): RedisServer => {
    if (server === undefined) throw new Error('useRedisServer: the redis-server is started in the before hook')
    return server
  }
  before(async () => {
    server = await startRedisServer(options)
  })
  after(async () => {
    await server?.dispose()
  })
  return {
    host: '127.0.0.1',
    get port () { return started().port },
    get url () { return started().url },
    get pid () { return started().pid },
    get dir () { return started().dir },
    stop: async () => { await started().stop() },
    kill: async () => { await started().kill() },
    restart: async () => { await started().restart() },
    dispose: async () => { await started().dispose() }
  }
}
