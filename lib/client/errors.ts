/**
 * The client's error taxonomy. Every error says whether the request reached the broker
 * (`outcome`): `'not-sent'` (nothing of it left this process: safe to retry), `'unknown'` (it was on
 * the wire when things went wrong: the broker may or may not have acted on it) or `'refused'` (the
 * broker answered with a failure reason code, in `reasonCode`). Tests and callers test the class
 * and `code`, never the message text.
 */
import { MqttError, ReasonCode } from '../packet/index.js'

/** The store's failure (outcome 'not-sent' for a publish): declared with the store contract. */
export { StoreError } from './store/store.js'

/** Whether a failed request reached the broker. */
export type Outcome = 'not-sent' | 'unknown' | 'refused'

/** Options of a client error. */
export interface ClientErrorOptions {
  cause?: unknown
  reasonCode?: number
  reasonString?: string | undefined
}

/**
 * The base class of every client error. An `MqttError`, so `reasonCode` works as on the broker side:
 * the broker's reason code for `'refused'` errors, 0x80 (unspecified) otherwise.
 */
export class MqttClientError extends MqttError {
  override name = 'MqttClientError'
  /** Stable code for logs and tests ("ERR_MQTT_OFFLINE", ...). */
  readonly code: string
  readonly outcome: Outcome
  /** The broker's reason string (MQTT 5), when it gave one. */
  readonly reasonString: string | undefined

  constructor(code: string, outcome: Outcome, message: string, options: ClientErrorOptions = {}) {
    super(options.reasonCode ?? ReasonCode.UnspecifiedError, message, { cause: options.cause, disconnect: false })
    this.code = code
    this.outcome = outcome
    this.reasonString = options.reasonString
  }
}

/** The client or service was closed (`end()`, `destroy()`, `stop()`): the request will not be made. */
export class ClosedError extends MqttClientError {
  override name = 'ClosedError'
  constructor(outcome: Outcome = 'not-sent', message = 'client closed', options?: ClientErrorOptions) {
    super('ERR_MQTT_CLOSED', outcome, message, options)
  }
}

/** Not connected and the request cannot wait (a `Client` before CONNACK or after it closed). */
export class OfflineError extends MqttClientError {
  override name = 'OfflineError'
  constructor(message = 'not connected', options?: ClientErrorOptions) {
    super('ERR_MQTT_OFFLINE', 'not-sent', message, options)
  }
}

/** The caller's `AbortSignal` fired before the request was on the wire: nothing was sent. */
export class CanceledError extends MqttClientError {
  override name = 'CanceledError'
  constructor(options?: ClientErrorOptions) {
    super('ERR_MQTT_CANCELED', 'not-sent', 'canceled before it was sent', options)
  }
}

/**
 * The caller's `AbortSignal` fired after the request was sent: the caller stops waiting, the
 * exchange goes on in the background (a QoS 1/2 publish is still completed).
 */
export class AbandonedError extends MqttClientError {
  override name = 'AbandonedError'
  constructor(options?: ClientErrorOptions) {
    super('ERR_MQTT_ABANDONED', 'unknown', 'abandoned after it was sent; the exchange continues', options)
  }
}

/** The connection dropped while the request was pending (`outcome` says whether it had been sent). */
export class ConnectionLostError extends MqttClientError {
  override name = 'ConnectionLostError'
  constructor(outcome: Outcome = 'unknown', message = 'connection lost', options?: ClientErrorOptions) {
    super('ERR_MQTT_CONNECTION_LOST', outcome, message, options)
  }
}

/** A bound was hit (offline queue, in-flight table, pending requests): the request was not accepted. */
export class LimitError extends MqttClientError {
  override name = 'LimitError'
  constructor(message: string, options?: ClientErrorOptions) {
    super('ERR_MQTT_LIMIT', 'not-sent', message, options)
  }
}

/**
 * The request itself is invalid or exceeds what the broker announced (topic, QoS, size, retain):
 * it was not sent and would fail again. `reasonCode` is the MQTT reason (0x90, 0x95, 0x9A, ...).
 */
export class InvalidRequestError extends MqttClientError {
  override name = 'InvalidRequestError'
  constructor(message: string, options?: ClientErrorOptions) {
    super('ERR_MQTT_INVALID', 'not-sent', message, options)
  }
}

/** CONNACK reason codes after which trying again soon makes sense [MQTT-3.2.2.2, table 3-1]. */
const TRANSIENT_CONNACK = new Set<number>([
  ReasonCode.ServerUnavailable,
  ReasonCode.ServerBusy,
  ReasonCode.QuotaExceeded,
  ReasonCode.ConnectionRateExceeded,
  ReasonCode.UseAnotherServer,
  ReasonCode.ServerMoved,
  ReasonCode.UnspecifiedError,
  ReasonCode.ImplementationSpecificError
])

/** MQTT 3.x CONNACK return codes 1..5 as MQTT 5 reason codes. */
const V3_RETURN_CODES = [
  ReasonCode.Success,
  ReasonCode.UnsupportedProtocolVersion,
  ReasonCode.ClientIdentifierNotValid,
  ReasonCode.ServerUnavailable,
  ReasonCode.BadUserNameOrPassword,
  ReasonCode.NotAuthorized
]

/** Map a CONNACK code to the MQTT 5 reason code (3.x return codes 1..5 are mapped). */
export function connackReason(code: number, protocolLevel: number): number {
  if (protocolLevel >= 5) return code
  return V3_RETURN_CODES[code] ?? ReasonCode.UnspecifiedError
}

/**
 * The broker refused the connection (CONNACK reason ≠ 0). `reasonCode` is the MQTT 5 code (a 3.x
 * return code is mapped; the raw one is in `returnCode`). `transient` says whether retrying later
 * makes sense (server unavailable/busy, quota, rate, redirect); credential and identity refusals
 * are not transient. `serverReference` is the MQTT 5 redirect target, when given.
 */
export class ConnectionRefusedError extends MqttClientError {
  override name = 'ConnectionRefusedError'
  readonly returnCode: number
  readonly transient: boolean
  readonly serverReference: string | undefined
  constructor(returnCode: number, protocolLevel: number, options: { reasonString?: string | undefined; serverReference?: string | undefined } = {}) {
    const reasonCode = connackReason(returnCode, protocolLevel)
    super('ERR_MQTT_REFUSED', 'refused', `connection refused: ${reasonCodeText(reasonCode)}`, { reasonCode, reasonString: options.reasonString })
    this.returnCode = returnCode
    this.transient = TRANSIENT_CONNACK.has(reasonCode)
    this.serverReference = options.serverReference
  }
}

/** No CONNACK (or no connection at all) within the connect timeout. */
export class ConnectTimeoutError extends MqttClientError {
  override name = 'ConnectTimeoutError'
  constructor(ms: number) {
    super('ERR_MQTT_CONNECT_TIMEOUT', 'not-sent', `no CONNACK within ${ms} ms`)
  }
}

/** Nothing came back within the ping timeout after a PINGREQ: the connection is taken as dead. */
export class KeepaliveTimeoutError extends MqttClientError {
  override name = 'KeepaliveTimeoutError'
  constructor(ms: number) {
    super('ERR_MQTT_KEEPALIVE', 'unknown', `no answer to PINGREQ within ${ms} ms`, { reasonCode: ReasonCode.KeepAliveTimeout })
  }
}

/** The broker sent DISCONNECT (MQTT 5) with `reasonCode` (0x8E session taken over, 0x9C/0x9D redirect, 0x8B shutdown, ...). */
export class ServerDisconnectError extends MqttClientError {
  override name = 'ServerDisconnectError'
  readonly serverReference: string | undefined
  constructor(reasonCode: number, reasonString?: string, serverReference?: string) {
    super('ERR_MQTT_SERVER_DISCONNECT', 'unknown', `server disconnected: ${reasonCodeText(reasonCode)}`, { reasonCode, reasonString })
    this.serverReference = serverReference
  }
}

/** PUBACK or PUBREC with a failure reason (≥ 0x80, MQTT 5): the broker refused the message. */
export class PublishFailedError extends MqttClientError {
  override name = 'PublishFailedError'
  constructor(reasonCode: number, reasonString?: string) {
    super('ERR_MQTT_PUBLISH_FAILED', 'refused', `publish refused: ${reasonCodeText(reasonCode)}`, { reasonCode, reasonString })
  }
}

/** SUBACK (or UNSUBACK) refused at least one filter; `results` has every filter's code. */
export class SubscribeError extends MqttClientError {
  override name = 'SubscribeError'
  readonly results: readonly number[]
  constructor(results: readonly number[], reasonString?: string, what = 'subscribe') {
    const failed = results.find((code) => code >= 0x80) ?? ReasonCode.UnspecifiedError
    super('ERR_MQTT_SUBSCRIBE_FAILED', 'refused', `${what} refused: ${reasonCodeText(failed)}`, { reasonCode: failed, reasonString })
    this.results = results
  }
}

/** An MQTT 5 message whose Message Expiry Interval ran out while it waited to be sent: dropped. */
export class ExpiredError extends MqttClientError {
  override name = 'ExpiredError'
  constructor() {
    super('ERR_MQTT_EXPIRED', 'not-sent', 'the message expired while queued')
  }
}

/** The broker had no session (Session Present 0) while a message was in doubt and the policy is `'fail'`. */
export class SessionLostError extends MqttClientError {
  override name = 'SessionLostError'
  constructor() {
    super('ERR_MQTT_SESSION_LOST', 'unknown', 'the broker lost the session while the message was in flight')
  }
}

function reasonCodeText(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`
}

/** The transport could not be opened (connection refused, DNS, TLS handshake, WebSocket upgrade). */
export class ConnectFailedError extends MqttClientError {
  override name = 'ConnectFailedError'
  constructor(cause: unknown) {
    super('ERR_MQTT_CONNECT_FAILED', 'not-sent', `could not connect: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}
