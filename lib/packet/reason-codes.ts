/**
 * MQTT 5.0 reason codes (section 2.4) and MQTT 3.1/3.1.1 CONNACK return codes, as named constants.
 * Code never writes these numbers bare.
 */
export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  GrantedQoS0: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWillMessage: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2
} as const

/** A value of `ReasonCode`. */
export type ReasonCodeValue = (typeof ReasonCode)[keyof typeof ReasonCode]

/** MQTT 3.1 / 3.1.1 CONNACK return codes (section 3.2.2.3 of 3.1.1). */
export const ConnectReturnCode = {
  Accepted: 0x00,
  UnacceptableProtocolVersion: 0x01,
  IdentifierRejected: 0x02,
  ServerUnavailable: 0x03,
  BadUserNameOrPassword: 0x04,
  NotAuthorized: 0x05
} as const

/** The SUBACK failure return code of MQTT 3.1.1 [MQTT-3.9.3-2]. */
export const SUBACK_FAILURE = 0x80

const NAMES = new Map<number, string>()
for (const [name, code] of Object.entries(ReasonCode)) {
  // The first name wins for codes with several names (0x00 is "Success").
  if (!NAMES.has(code)) NAMES.set(code, name)
}

/** A readable name for a reason code, for logs and error messages: "ProtocolError (0x82)". */
export function reasonCodeName(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, '0')}`
  const name = NAMES.get(code)
  return name === undefined ? hex : `${name} (${hex})`
}

/**
 * Valid reason codes per packet type in MQTT 5 (section 2.4, table 2-6, and each packet's section).
 * The decoder refuses any other value with a malformed-packet error [MQTT-3.4.2-1 etc.].
 */
export const VALID_REASON_CODES = {
  connack: [
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97,
    0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f
  ],
  puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrel: [0x00, 0x92],
  pubcomp: [0x00, 0x92],
  suback: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  unsuback: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  disconnect: [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2
  ],
  auth: [0x00, 0x18, 0x19]
} as const satisfies Record<string, readonly number[]>

/** Lookup tables built from `VALID_REASON_CODES`: 256 booleans per packet type. */
export const VALID_REASON_CODE_TABLE: Readonly<Record<keyof typeof VALID_REASON_CODES, Uint8Array>> =
  Object.fromEntries(
    Object.entries(VALID_REASON_CODES).map(([type, codes]) => {
      const table = new Uint8Array(256)
      for (const code of codes) table[code] = 1
      return [type, table]
    })
  ) as Record<keyof typeof VALID_REASON_CODES, Uint8Array>
