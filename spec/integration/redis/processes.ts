import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'

const FIXTURE = fileURLToPath(new URL('./fixtures/redis-broker.ts', import.meta.url))

/** A broker process of fixtures/redis-broker.ts. */
export interface BrokerProcess {
  readonly nodeId: string
  readonly child: ChildProcess
  readonly port: number
  /** What the process wrote to stderr (its warnings and errors). */
  stderr(): string
  /** What the process wrote to stdout (`listening …`, `event …`). */
  stdout(): string
}

/** Spawns a broker process (fixtures/redis-broker.ts) and waits for its port. */
export async function spawnBroker(url: string, nodeId: string, prefix: string, env: Record<string, string> = {}): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, REDIS_URL: url, NODE_ID: nodeId, KEY_PREFIX: prefix, ...env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stderr = ''
  let stdout = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker ${nodeId} did not start: ${stderr}`)), 20_000)
    const check = (): void => {
      const match = /listening (\d+)/.exec(stdout)
      if (match === null) return
      clearTimeout(timer)
      child.stdout?.off('data', check)
      resolve(Number(match[1]))
    }
    child.stdout?.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`broker ${nodeId} exited with ${code}: ${stderr}`))
    })
  })
  return { nodeId, child, port, stderr: () => stderr, stdout: () => stdout }
}

/** Stops a broker process (SIGTERM, SIGKILL after 5 s); resolves once it exited. */
export async function stopBroker(b: BrokerProcess | undefined): Promise<void> {
  if (b === undefined || b.child.exitCode !== null || b.child.signalCode !== null) return
  const exited = new Promise((resolve) => b.child.once('exit', resolve))
  b.child.kill('SIGTERM')
  const timer = setTimeout(() => b.child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** Kills a broker process at once (SIGKILL), as a crash would; resolves once it exited. */
export async function killBroker(b: BrokerProcess): Promise<void> {
  if (b.child.exitCode !== null || b.child.signalCode !== null) return
  const exited = new Promise((resolve) => b.child.once('exit', resolve))
  b.child.kill('SIGKILL')
  await exited
}

/** Connects an MQTT.js client (no automatic reconnect) and waits for CONNACK. */
export async function connectMqtt(port: number, options: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0, ...options })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  return client
}
