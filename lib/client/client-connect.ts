/** CONNECT … CONNACK (with the MQTT 5 AUTH exchange) and the limits CONNACK sets. */
import { ReasonCode, encode } from '../packet/index.js'
import type { AuthPacket, ConnackPacket, ConnectPacket, ConnectProperties } from '../packet/index.js'
import type { ConnectionContext } from './client-context.js'
import type { ClientLimits } from './client-types.js'
import { AbandonedError, CanceledError, ClosedError, ConnectionRefusedError, InvalidRequestError, MqttClientError } from './errors.js'
import { DEFAULT_MAX_INFLIGHT, DEFAULT_RECEIVE_MAXIMUM } from './options.js'

export type { ClientLimits } from './client-types.js'

/** Send CONNECT and wait for a successful CONNACK. */
export async function handshake(client: ConnectionContext, signal: AbortSignal): Promise<void> {
  const options = client.options
  const level = client.protocolLevel
  const clean = options.clean ?? true
  if (level === 3 && client.clientId === '') throw new InvalidRequestError('MQTT 3.1 needs a client id')
  if (level === 4 && client.clientId === '' && !clean) throw new InvalidRequestError('an empty client id needs clean: true at MQTT 3.1.1')
  const secret = typeof options.password === 'function' ? await options.password() : options.password
  const packet: ConnectPacket = { type: 'connect', protocolLevel: level, clean, keepalive: client.keepalive, clientId: client.clientId }
  if (options.username !== undefined) packet.username = options.username
  if (secret !== undefined) packet.password = typeof secret === 'string' ? Buffer.from(secret) : secret
  const will = options.will
  if (will !== undefined) {
    packet.will = {
      topic: will.topic,
      payload: typeof will.payload === 'string' ? Buffer.from(will.payload) : will.payload,
      qos: will.qos ?? 0,
      retain: will.retain ?? false,
      properties: level === 5 ? will.properties : undefined
    }
  }
  const auth = options.auth
  if (level === 5) {
    const properties: ConnectProperties = { receiveMaximum: DEFAULT_RECEIVE_MAXIMUM, ...options.properties }
    if (!clean && properties.sessionExpiryInterval === undefined) properties.sessionExpiryInterval = 0xffffffff
    if (auth !== undefined) {
      properties.authenticationMethod = auth.method
      const data = await auth.data?.()
      if (data !== undefined) properties.authenticationData = data
    }
    packet.properties = properties
  }
  if (signal.aborted) throw signal.reason
  client.send(encode(packet))
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    const done = (error?: Error): void => {
      signal.removeEventListener('abort', onAbort)
      client.onConnackPacket = undefined
      client.onCloseBeforeConnack = undefined
      if (error === undefined) resolve()
      else reject(error)
    }
    client.onCloseBeforeConnack = (error) => done(error)
    client.onConnackPacket = (connack) => {
      if (connack.reasonCode !== ReasonCode.Success) {
        const error = new ConnectionRefusedError(connack.reasonCode, level, {
          reasonString: connack.properties?.reasonString,
          serverReference: connack.properties?.serverReference
        })
        done(error)
        client.close('server', error)
        return
      }
      client.onAuthPacket = undefined
      client.established(connack)
      done()
    }
    client.onAuthPacket = (packet: AuthPacket) => {
      if (auth === undefined || (packet.reasonCode ?? 0) !== ReasonCode.ContinueAuthentication) {
        client.fail(new MqttClientError('ERR_MQTT_AUTH', 'refused', 'unexpected AUTH from the broker', { reasonCode: ReasonCode.ProtocolError }))
        return
      }
      Promise.resolve()
        .then(() => auth.challenge(packet.properties?.authenticationData))
        .then(
          (data) => {
            const properties = data === undefined ? { authenticationMethod: auth.method } : { authenticationMethod: auth.method, authenticationData: data }
            client.send(encode({ type: 'auth', reasonCode: ReasonCode.ContinueAuthentication, properties }, 5))
          },
          (error: unknown) => {
            done(error instanceof Error ? error : new Error(String(error)))
            client.destroy()
          }
        )
    }
  })
}

/** The limits of a connection from its CONNACK. */
export function resolveLimits(client: ConnectionContext, connack: ConnackPacket): ClientLimits {
  const p = connack.properties ?? {}
  return {
    receiveMaximum: Math.min(p.receiveMaximum ?? 65_535, client.options.maxInflight ?? DEFAULT_MAX_INFLIGHT),
    maximumPacketSize: p.maximumPacketSize ?? 268_435_460,
    topicAliasMaximum: p.topicAliasMaximum ?? 0,
    maximumQoS: p.maximumQoS ?? 2,
    retainAvailable: p.retainAvailable ?? true,
    wildcardSubscriptionAvailable: p.wildcardSubscriptionAvailable ?? true,
    subscriptionIdentifiersAvailable: p.subscriptionIdentifiersAvailable ?? client.protocolLevel === 5,
    sharedSubscriptionAvailable: p.sharedSubscriptionAvailable ?? true,
    keepalive: p.serverKeepAlive ?? client.keepalive,
    clientId: p.assignedClientIdentifier ?? client.clientId,
    responseInformation: p.responseInformation
  }
}

/** MQTT 5 re-authentication on an open connection: AUTH 0x19, challenges answered, done on AUTH 0x00. */
export async function reauthenticate(client: ConnectionContext, signal: AbortSignal | undefined): Promise<void> {
  const auth = client.options.auth
  if (client.protocolLevel !== 5 || auth === undefined) throw new InvalidRequestError('re-authentication needs MQTT 5 and the auth option')
  if (signal?.aborted === true) throw new CanceledError({ cause: signal.reason })
  if (client.onAuthPacket !== undefined) throw new InvalidRequestError('a re-authentication is already running')
  const data = await auth.data?.()
  const properties = data === undefined ? { authenticationMethod: auth.method } : { authenticationMethod: auth.method, authenticationData: data }
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error): void => {
      client.onAuthPacket = undefined
      signal?.removeEventListener('abort', onAbort)
      if (error === undefined) resolve()
      else reject(error)
    }
    const onAbort = (): void => done(new AbandonedError({ cause: signal?.reason }))
    signal?.addEventListener('abort', onAbort, { once: true })
    client.closed.then((info) => done(info.error ?? new ClosedError('unknown')), () => undefined)
    client.onAuthPacket = (packet: AuthPacket) => {
      const code = packet.reasonCode ?? ReasonCode.Success
      if (code === ReasonCode.Success) return done()
      if (code !== ReasonCode.ContinueAuthentication) {
        client.fail(new MqttClientError('ERR_MQTT_AUTH', 'refused', 'unexpected AUTH reason from the broker', { reasonCode: ReasonCode.ProtocolError }))
        return
      }
      Promise.resolve()
        .then(() => auth.challenge(packet.properties?.authenticationData))
        .then(
          (answer) => {
            const props = answer === undefined ? { authenticationMethod: auth.method } : { authenticationMethod: auth.method, authenticationData: answer }
            client.send(encode({ type: 'auth', reasonCode: ReasonCode.ContinueAuthentication, properties: props }, 5))
          },
          (error: unknown) => {
            done(error instanceof Error ? error : new Error(String(error)))
            client.destroy()
          }
        )
    }
    client.send(encode({ type: 'auth', reasonCode: ReasonCode.ReAuthenticate, properties }, 5))
  })
}

/**
 * A server without MQTT 5 answers our v5 CONNECT with its own CONNACK (`20 02 00 rc`): two bytes
 * that do not decode as a v5 CONNACK. Return codes 1–5 are a refusal in 3.x terms (1:
 * unacceptable protocol version): the `ConnectionRefusedError` to close with, if `chunk` (the first
 * bytes received) is one.
 */
export function legacyConnackRefusal(chunk: Buffer): ConnectionRefusedError | undefined {
  if (chunk.length < 4 || chunk[0] !== 0x20 || chunk[1] !== 2) return undefined
  const returnCode = chunk[3]!
  if (returnCode < 1 || returnCode > 5) return undefined
  return new ConnectionRefusedError(returnCode, 4, { reasonString: 'the server answered with an MQTT 3.x CONNACK: it does not speak MQTT 5' })
}
