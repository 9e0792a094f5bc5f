/** MQTT.js clients for the listener specs: connect to a bound listener of any kind. */
import mqtt from 'mqtt'
import type { IClientOptions, IConnackPacket, MqttClient } from 'mqtt'
import type { BoundListener } from '../../lib/transport/listeners.js'
import type { Teardown } from '../helpers/teardown.js'

/** Client options for `listener` (URL parts), merged with `options`. */
export function optionsFor(listener: BoundListener, options: IClientOptions = {}): IClientOptions {
  const base: IClientOptions = { reconnectPeriod: 0, connectTimeout: 5000, ...options }
  switch (listener.kind) {
    case 'tcp':
      return { ...base, protocol: 'mqtt', host: '127.0.0.1', port: listener.port }
    case 'tls':
      return { ...base, protocol: 'mqtts', host: '127.0.0.1', port: listener.port }
    case 'ws':
      return { ...base, protocol: 'ws', host: '127.0.0.1', port: listener.port, path: listener.path ?? '/mqtt' }
    case 'wss':
      return { ...base, protocol: 'wss', host: '127.0.0.1', port: listener.port, path: listener.path ?? '/mqtt' }
    case 'unix':
      return { ...base, protocol: 'mqtt', unixSocket: true, path: listener.socketPath! }
  }
}

/**
 * Connect MQTT.js to `listener`; resolves once CONNACK accepted, rejects with the error (or a
 * closed connection) otherwise. The client is ended after the test.
 */
export async function connectTo(teardown: Teardown, listener: BoundListener, options: IClientOptions = {}): Promise<MqttClient> {
  return (await connectWithAck(teardown, listener, options)).client
}

/** `connectTo`, with the CONNACK. */
export function connectWithAck(
  teardown: Teardown,
  listener: BoundListener,
  options: IClientOptions = {}
): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  const client = mqtt.connect(optionsFor(listener, options))
  teardown.defer(() => client.end(true))
  return new Promise((resolve, reject) => {
    client.once('connect', (connack) => resolve({ client, connack }))
    client.once('error', (error) => reject(error))
    client.once('close', () => reject(new Error(`connection to ${listener.name} closed before CONNACK`)))
  })
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
