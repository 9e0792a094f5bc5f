/**
 * The MQTT client: `Client` (one connection), `Service` (stays connected), one-call helpers, the
 * error taxonomy and the session stores. Imports the codec, never the broker side.
 */
export { Client } from './client.js'
export type { CloseInfo, EndOptions, PacketTrace } from './client.js'
export type { ClientLimits } from './client-connect.js'
export type { PublishOptions } from './client-outbound.js'
export type { SubscribeOptions, SubscribeRequest, SubscribeResult, UnsubscribeResult } from './client-requests.js'
export { Service } from './service.js'
export type { ServiceOptions, ServiceState } from './service.js'
export type { MessagesOptions, ObserveOptions } from './service-consumers.js'
export type { Delivered, Enqueued, OutgoingMessage, PublishAllOptions, PublishOutcome } from './service-publish.js'
export { backoffDelay } from './backoff.js'
export type { BackoffOptions } from './backoff.js'
export { ClientSession } from './session.js'
export type { PublishResult } from './session.js'
export type { InboundMessage } from './inbound.js'
export type { ClientOptions, EnhancedAuth, Secret, WillOptions } from './options.js'
export { parseBrokerUrl, urlDialer } from './dial.js'
export type { DialOptions, Dialer } from './dial.js'
export { realClock } from './clock.js'
export type { Clock, Timer } from './clock.js'
export { publishMessage, receiveMessage, clearRetained, clearSession, request } from './helpers.js'
export type { Requester } from './helpers.js'
export {
  MqttClientError,
  ClosedError,
  OfflineError,
  CanceledError,
  AbandonedError,
  ConnectionLostError,
  LimitError,
  InvalidRequestError,
  ConnectionRefusedError,
  ConnectFailedError,
  ConnectTimeoutError,
  KeepaliveTimeoutError,
  ServerDisconnectError,
  PublishFailedError,
  SubscribeError,
  SessionLostError,
  ExpiredError,
  StoreError
} from './errors.js'
export type { Outcome } from './errors.js'
export { MemoryStore } from './store/memory-store.js'
export { FileStore } from './store/file-store.js'
export type { FileStoreOptions } from './store/file-store.js'
export type { ClientStore, StoreRecord, StoreSnapshot, StoreMeta, StoreWarning } from './store/store.js'
