import { ReasonCode, reasonCodeName } from './reason-codes.js'

/** Options common to every `MqttError`. */
export interface MqttErrorOptions {
  /** The underlying error, when there is one. */
  cause?: unknown
  /**
   * Whether the connection that produced the error must be closed. Defaults to true: the MQTT
   * specifications require closing the network connection on malformed packets and protocol errors
   * [MQTT-4.8.0-1] (3.1.1: [MQTT-4.8.0-1]).
   */
  disconnect?: boolean
}

/**
 * The base class of every error the project raises about MQTT traffic. It carries an MQTT 5 reason
 * code (`reasonCode`, a `ReasonCode` constant) that an MQTT 5 peer may be told in a CONNACK or
 * DISCONNECT, and whether the connection must close. Tests assert the class and the reason code,
 * never the message text.
 */
export class MqttError extends Error {
  override name = 'MqttError'
  readonly reasonCode: number
  readonly disconnect: boolean

  constructor(reasonCode: number, message: string, options: MqttErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.reasonCode = reasonCode
    this.disconnect = options.disconnect ?? true
  }

  /** "ProtocolError (0x82)" and so on. */
  get reasonName(): string {
    return reasonCodeName(this.reasonCode)
  }
}

/** 0x81: the packet does not follow the wire format of the specification. */
export class MalformedPacketError extends MqttError {
  override name = 'MalformedPacketError'
  constructor(message: string, options?: MqttErrorOptions) {
    super(ReasonCode.MalformedPacket, message, options)
  }
}

/** 0x82: the packet is well formed but breaks a rule of the protocol (or comes at the wrong time). */
export class ProtocolError extends MqttError {
  override name = 'ProtocolError'
  constructor(message: string, options?: MqttErrorOptions) {
    super(ReasonCode.ProtocolError, message, options)
  }
}

/** 0x95: the packet is larger than the receiver's maximum packet size. */
export class PacketTooLargeError extends MqttError {
  override name = 'PacketTooLargeError'
  /** The size of the whole packet in bytes, as announced by its fixed header. */
  readonly size: number
  /** The maximum the receiver accepts. */
  readonly maximum: number
  constructor(size: number, maximum: number, options?: MqttErrorOptions) {
    super(
      ReasonCode.PacketTooLarge,
      `packet of ${size} bytes exceeds the maximum packet size of ${maximum} bytes`,
      options
    )
    this.size = size
    this.maximum = maximum
  }
}

/**
 * 0x84: a CONNECT with a protocol name or level this receiver does not speak. A server answers
 * with CONNACK 0x84 (5.0) or return code 0x01 (3.1.1) and closes [MQTT-3.1.2-2].
 */
export class UnsupportedProtocolVersionError extends MqttError {
  override name = 'UnsupportedProtocolVersionError'
  /** The protocol level byte found in the CONNECT, when it could be read. */
  readonly protocolLevel: number | undefined
  /** The protocol name found in the CONNECT, when it could be read. */
  readonly protocolName: string | undefined
  constructor(
    message: string,
    protocolName: string | undefined,
    protocolLevel: number | undefined,
    options?: MqttErrorOptions
  ) {
    super(ReasonCode.UnsupportedProtocolVersion, message, options)
    this.protocolName = protocolName
    this.protocolLevel = protocolLevel
  }
}

/** 0x90: a topic name that is not valid (wildcards in a PUBLISH or will topic; empty before MQTT 5). */
export class TopicNameInvalidError extends MqttError {
  override name = 'TopicNameInvalidError'
  constructor(message: string, options?: MqttErrorOptions) {
    super(ReasonCode.TopicNameInvalid, message, options)
  }
}

/** 0x8F: a topic filter that is not valid (misplaced wildcard, bad shared subscription syntax). */
export class TopicFilterInvalidError extends MqttError {
  override name = 'TopicFilterInvalidError'
  constructor(message: string, options?: MqttErrorOptions) {
    super(ReasonCode.TopicFilterInvalid, message, options)
  }
}

/** 0x87 (5.0) / return code 5 (3.1.1): the client may not do this. */
export class NotAuthorizedError extends MqttError {
  override name = 'NotAuthorizedError'
  constructor(message: string, options?: MqttErrorOptions) {
    super(ReasonCode.NotAuthorized, message, options)
  }
}

/** 0x8E: another connection took over this client's session. */
export class SessionTakenOverError extends MqttError {
  override name = 'SessionTakenOverError'
  constructor(message = 'session taken over by another connection', options?: MqttErrorOptions) {
    super(ReasonCode.SessionTakenOver, message, options)
  }
}
