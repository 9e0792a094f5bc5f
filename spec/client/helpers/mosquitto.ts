/** Debian's mosquitto, started by a spec on free ports with a generated configuration, stopped by pid. */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export interface Mosquitto {
  tcpPort: number
  tlsPort: number
  /** WebSocket (ws://…/mqtt) port, 0 unless `websockets`. */
  wsPort: number
  /** Secure WebSocket port (server certificate of `tls`, no client certificate asked), 0 unless `websockets` and `tls`. */
  wssPort: number
  socketPath: string
  process: ChildProcess
  log: string[]
  stop(): Promise<void>
}

export interface MosquittoOptions {
  tls?: { caFile: string; certFile: string; keyFile: string; requireCertificate: boolean }
  /**
   * Add WebSocket listeners (and a secure one with `tls`). Debian's 2.0.11 has them (libwebsockets
   * built in) but binds them to every interface unless `socket_domain ipv4` is given, and refuses
   * to start when a WebSocket listener is the only listener ("Unable to start any listening
   * sockets"): here there is always the TCP listener first.
   */
  websockets?: boolean
}

function waitForPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy()
        resolve()
      })
      socket.once('error', () => {
        socket.destroy()
        if (Date.now() > deadline) reject(new Error(`mosquitto did not listen on ${port}`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'mosquitto-spec-'))
  // Started as root, mosquitto drops to its own user: it must be able to create the socket here.
  chmodSync(dir, 0o777)
  const tcpPort = await freePort()
  const tlsPort = options.tls === undefined ? 0 : await freePort()
  const wsPort = options.websockets === true ? await freePort() : 0
  const wssPort = options.websockets === true && options.tls !== undefined ? await freePort() : 0
  const socketPath = join(dir, 'mqtt.sock')
  const lines = [
    'per_listener_settings false',
    'allow_anonymous true',
    'persistence false',
    'max_queued_messages 100000',
    'max_inflight_messages 0',
    `listener ${tcpPort} 127.0.0.1`,
    `listener 0 ${socketPath}`
  ]
  if (options.tls !== undefined) {
    lines.push(`listener ${tlsPort} 127.0.0.1`, `cafile ${options.tls.caFile}`, `certfile ${options.tls.certFile}`, `keyfile ${options.tls.keyFile}`)
    if (options.tls.requireCertificate) lines.push('require_certificate true')
  }
  if (wsPort !== 0) lines.push(`listener ${wsPort} 127.0.0.1`, 'protocol websockets', 'socket_domain ipv4')
  if (wssPort !== 0 && options.tls !== undefined) {
    lines.push(`listener ${wssPort} 127.0.0.1`, 'protocol websockets', 'socket_domain ipv4', `cafile ${options.tls.caFile}`, `certfile ${options.tls.certFile}`, `keyfile ${options.tls.keyFile}`)
  }
  const config = join(dir, 'mosquitto.conf')
  writeFileSync(config, lines.join('\n') + '\n')
  const child = spawn('mosquitto', ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  const log: string[] = []
  child.stdout?.on('data', (d: Buffer) => log.push(d.toString()))
  child.stderr?.on('data', (d: Buffer) => log.push(d.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await waitForPort(tcpPort, Date.now() + 10_000)
    for (const port of [tlsPort, wsPort, wssPort]) if (port !== 0) await waitForPort(port, Date.now() + 10_000)
  } catch (error) {
    await stop()
    throw new Error(`${(error as Error).message}\n${log.join('')}`)
  }
  return { tcpPort, tlsPort, wsPort, wssPort, socketPath, process: child, log, stop }
}
