/** Specs of the HTTP endpoints: a broker with a TCP listener and its HTTP listener, real sockets. */
import mqtt from 'mqtt'
import type { MqttClient, IClientOptions } from 'mqtt'
import { Broker } from '../../lib/broker/broker.js'
import type { BrokerOptions } from '../../lib/broker/options.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { listenHttp } from '../../lib/http/listen.js'
import type { HttpListener } from '../../lib/http/listen.js'
import type { HttpListenOptions } from '../../lib/http/options.js'
import type { Teardown } from '../helpers/teardown.js'

export const TOKEN = 'spec-token-0123456789abcdef'

/** A running broker with one TCP listener and the HTTP listener. */
export interface Setup {
  broker: Broker
  http: HttpListener
  mqttPort: number
  /** Fetches `path` of the HTTP listener with the bearer token (unless `headers` say otherwise). */
  call(path: string, init?: RequestInit & { json?: unknown }): Promise<{ status: number; headers: Headers; body: unknown; text: string }>
  /** An MQTT.js client connected to the TCP listener, ended after the test. */
  connect(options?: IClientOptions): Promise<MqttClient>
}

export async function setup(teardown: Teardown, options: { broker?: Partial<BrokerOptions>; http?: HttpListenOptions } = {}): Promise<Setup> {
  const broker = teardown.add(new Broker({ backend: new MemoryBackend(), logger: silentLogger, ...options.broker }), (b) => b.close())
  const address = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0, name: 'tcp-main' })
  const http = teardown.add(await listenHttp(broker, { port: 0, defaultMetrics: false, auth: { tokens: [TOKEN] }, ...options.http }), (h) => h.close())
  return {
    broker,
    http,
    mqttPort: address.port,
    async call(path, init = {}) {
      const headers = new Headers(init.headers)
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${TOKEN}`)
      if (headers.get('authorization') === '') headers.delete('authorization')
      let body = init.body
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json')
        body = JSON.stringify(init.json)
      }
      const response = await fetch(http.url + path, { ...init, headers, body })
      const text = await response.text()
      let parsed: unknown = undefined
      try {
        parsed = JSON.parse(text)
      } catch {
        // not JSON (metrics, the dashboard)
      }
      return { status: response.status, headers: response.headers, body: parsed, text }
    },
    async connect(options = {}) {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${address.port}`, { reconnectPeriod: 0, ...options })
      teardown.add(client, (c) => c.endAsync(true))
      return client
    }
  }
}

/** Resolves once `condition()` resolves truthy (checked every 20 ms); rejects after `ms`. */
export async function until(condition: () => unknown, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The value of one sample of the Prometheus text `text` (`name{labels}`), or undefined. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return undefined
}
