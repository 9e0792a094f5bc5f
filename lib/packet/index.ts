/**
 * The MQTT wire codec for 3.1, 3.1.1 and 5.0: packet types, a streaming decoder, an encoder, an
 * encode-once PUBLISH template, typed errors, reason codes and topic helpers. Pure: no I/O.
 */
export { Decoder, decodeAll, MAX_PACKET_SIZE } from './decoder.js'
export type { DecoderOptions } from './decoder.js'
export { encode, encodedLength } from './encoder.js'
export { PublishTemplate, writePublish } from './publish-template.js'
export type { EncodedPublish, PublishContent } from './publish-template.js'
export {
  MqttError,
  MalformedPacketError,
  ProtocolError,
  PacketTooLargeError,
  UnsupportedProtocolVersionError,
  TopicNameInvalidError,
  TopicFilterInvalidError,
  NotAuthorizedError,
  SessionTakenOverError
} from './errors.js'
export type { MqttErrorOptions } from './errors.js'
export { ReasonCode, ConnectReturnCode, SUBACK_FAILURE, VALID_REASON_CODES, reasonCodeName } from './reason-codes.js'
export type { ReasonCodeValue } from './reason-codes.js'
export { PacketTypeCode, PACKET_TYPE_NAMES } from './types.js'
export type {
  Packet,
  PacketType,
  ProtocolLevel,
  QoS,
  UserProperty,
  Properties,
  PropertyName,
  ConnectProperties,
  WillProperties,
  ConnackProperties,
  PublishProperties,
  AckProperties,
  SubscribeProperties,
  UnsubscribeProperties,
  DisconnectProperties,
  AuthProperties,
  Will,
  ConnectPacket,
  ConnackPacket,
  PublishPacket,
  AckPacket,
  PubackPacket,
  PubrecPacket,
  PubrelPacket,
  PubcompPacket,
  Subscription,
  SubscribePacket,
  SubackPacket,
  UnsubscribePacket,
  UnsubackPacket,
  PingreqPacket,
  PingrespPacket,
  DisconnectPacket,
  AuthPacket
} from './types.js'
export {
  checkTopicName,
  checkTopicFilter,
  isValidTopicName,
  isValidTopicFilter,
  parseSharedSubscription,
  isSystemTopic,
  topicMatches,
  SharedSubscriptionsNotSupportedError,
  WildcardSubscriptionsNotSupportedError,
  MAX_TOPIC_LENGTH,
  SHARED_PREFIX
} from './topic.js'
export type { TopicFilterOptions, SharedSubscription } from './topic.js'
