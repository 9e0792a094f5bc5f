/** The connect procedure around a handshake: one timeout and one signal over dial + CONNECT + CONNACK. */
import type { Duplex } from 'node:stream'
import type { ProtocolLevel } from '../packet/index.js'
import { realClock } from './clock.js'
import type { Clock } from './clock.js'
import { urlDialer } from './dial.js'
import { CanceledError, ConnectFailedError, ConnectTimeoutError, InvalidRequestError, MqttClientError } from './errors.js'
import { DEFAULT_CONNECT_TIMEOUT_MS } from './options.js'
import type { ClientOptions } from './options.js'

/** Anything the connect procedure can destroy when it gives up. */
interface Destroyable {
  destroy(): void
}

/** Dial, build the connection object, run `handshake` (CONNECT … CONNACK) within the timeout. */
export async function connectWith<C extends Destroyable>(
  options: ClientOptions,
  build: (stream: Duplex, level: ProtocolLevel, clock: Clock) => C,
  handshake: (client: C, signal: AbortSignal) => Promise<void>
): Promise<C> {
  const clock = options.clock ?? realClock
  const level = options.protocolVersion ?? 4
  if (level !== 3 && level !== 4 && level !== 5) throw new InvalidRequestError(`protocolVersion must be 3, 4 or 5 (got ${String(level)})`)
  if (options.dialer === undefined && options.url === undefined) throw new InvalidRequestError('no broker: give a URL or a dialer')
  const dialer = options.dialer ?? urlDialer(options.url!, options)
  const outer = options.signal
  if (outer?.aborted === true) throw new CanceledError({ cause: outer.reason })
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  const controller = new AbortController()
  const timer = clock.setTimer(() => controller.abort(new ConnectTimeoutError(timeoutMs)), timeoutMs)
  const onAbort = (): void => controller.abort(new CanceledError({ cause: outer?.reason }))
  outer?.addEventListener('abort', onAbort, { once: true })
  const signal = controller.signal
  try {
    let stream: Duplex
    try {
      stream = await dialer(signal)
    } catch (error) {
      if (signal.aborted) throw signal.reason
      throw error instanceof MqttClientError ? error : new ConnectFailedError(error)
    }
    if (signal.aborted) {
      stream.destroy()
      throw signal.reason
    }
    const client = build(stream, level, clock)
    try {
      await handshake(client, signal)
    } catch (error) {
      client.destroy()
      throw signal.aborted ? signal.reason : error
    }
    return client
  } finally {
    timer.cancel()
    outer?.removeEventListener('abort', onAbort)
  }
}
