/**
 * The public entry of the MQTT broker framework: the engine (`Broker`), its options and events,
 * the embedded backend (`MemoryBackend`, `MemorySession`), the Redis backend (`KeyvBackend`),
 * multi-tenancy (`TenantBackend`, tenant resolvers), the Backend and Session contracts, the
 * backend conformance suite, the transports and the wire codec.
 *
 * ```ts
 * import { Broker, MemoryBackend } from 'mqtt-broker-framework'
 * const broker = new Broker({ backend: new MemoryBackend() })
 * await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 1883 })
 * ```
 */

// The engine.
export { Broker } from './broker/broker.js'
export type { ListenOptions } from './broker/broker.js'
export type { BrokerOptions, ResolvedOptions } from './broker/options.js'
export { systemClock } from './broker/clock.js'
export type { Clock, ClockTimer } from './broker/clock.js'
export type {
  BrokerEvent,
  BrokerEventType,
  BrokerClient,
  DisconnectReason,
  DropReason
} from './broker/events.js'
export type { BrokerStats } from './broker/stats.js'
export { createLogger, silentLogger, LOG_LEVELS } from './broker/logger.js'
export type { InlinePublish, InlinePublishProperties, InlineSubscribeOptions, InlineMessage } from './broker/inline.js'
export type { Logger, LogLevel, LogFields } from './broker/logger.js'
export { escapeControlCharacters } from './util/control-characters.js'

// Transports.
export {
  listenTcp,
  listenWebSocket,
  memoryPair,
  startListeners,
  ListenerConfigError,
  parseProxyHeader,
  ProxyProtocolError
} from './transport/index.js'
export type {
  BoundListener,
  CertificateIdentity,
  ClientCertificateMode,
  HttpEndpoint,
  ListenerConfig,
  ListenerKind,
  Listeners,
  ListenerTarget,
  ProxyHeader,
  TlsListenerConfig,
  TransportLog,
  Connection,
  ConnectionHandler,
  ConnectionInfo,
  PeerCertificate,
  Listener,
  ListenAddress,
  TransportKind,
  TcpListenOptions,
  WebSocketListenOptions,
  MemoryPair
} from './transport/index.js'

// The embedded backend and session.
export { MemoryBackend, DEFAULT_MAX_RETAINED_MESSAGES } from './backend/memory-backend.js'
export type { MemoryBackendOptions, MemoryBackendStats } from './backend/memory-backend.js'
export { MemorySession, DEFAULT_MAX_QUEUED_MESSAGES, isMessageExpired } from './session/memory-session.js'
export type { MemorySessionOptions, SessionQueueStats } from './session/memory-session.js'
export { mergeSubscriptions } from './backend/merge.js'

// MQTT 5 enhanced authentication: SCRAM-SHA-256 over stored credentials.
export {
  ScramAuthenticator,
  ScramClient,
  createScramCredentials,
  SCRAM_SHA_256,
  MIN_SCRAM_ITERATIONS
} from './auth/scram.js'
export type { ScramCredentials, ScramAuthenticatorOptions } from './auth/scram.js'

// Access control around any backend: password files, rules, ACLs, JWT, HTTP hook, users in Redis.
export { AccessControlBackend, withAccessControl } from './auth/access-backend.js'
export type { AccessControlBackendOptions } from './auth/access-backend.js'
export { AccessControl } from './auth/access-control.js'
export type { AccessControlOptions, AccessEvent, AccessStats } from './auth/access-control.js'
export { ClientAcl, checkAclRule, filterCovers, filtersOverlap } from './auth/acl.js'
export type { AclAccess, AclRule, AclSubject } from './auth/acl.js'
export { AclFileError, parseAclFile, readAclFile } from './auth/acl-file.js'
export type { Authenticator, AuthRequest, AuthVerdict, Authorizer, AuthorizeRequest, Identity } from './auth/authenticator.js'
export { BruteForceGuard } from './auth/brute-force.js'
export type { BruteForceOptions, BruteForceStats } from './auth/brute-force.js'
export { accessControlFromConfig, authConfigSchema } from './auth/config.js'
export type { AuthConfig, AuthConfigContext } from './auth/config.js'
export { ConnectionRules, globPattern, hostOf } from './auth/connection-rules.js'
export type { ConnectionFacts, ConnectionRule } from './auth/connection-rules.js'
export { HttpAuthHook } from './auth/http-hook.js'
export type { HttpHookAction, HttpHookOptions, HttpHookStats } from './auth/http-hook.js'
export { JwtAuthenticator } from './auth/jwt.js'
export type { JwtOptions } from './auth/jwt.js'
export { PASSWD_USAGE, runPasswd } from './auth/passwd-command.js'
export type { PasswdIo } from './auth/passwd-command.js'
export { PasswordFile, PasswordFileError, parsePasswordFile, formatScram } from './auth/password-file.js'
export type { PasswordEntry } from './auth/password-file.js'
export { dummyHash, hashPassword, parseHash, verifyPassword } from './auth/password-hash.js'
export type { ParsedHash, ScryptParameters } from './auth/password-hash.js'
export { RedisUserStore } from './auth/redis-store.js'
export type { RedisUserStoreOptions } from './auth/redis-store.js'

// The Redis backend (several broker processes and tenants over one Redis).
export { KeyvBackend, KeyvSession } from './backend/keyv/index.js'
export type { KeyvBackendEvent, KeyvBackendOptions, KeyvBackendStats } from './backend/keyv/index.js'

// Multi-tenancy.
export { TenantBackend } from './backend/tenant-backend.js'
export type { TenantBackendOptions } from './backend/tenant-backend.js'
export {
  TENANT_ID_PATTERN,
  isValidTenant,
  validateTenant,
  TenantError,
  byClientIdPrefix,
  byFunction,
  byListener,
  byUsernameDomain,
  resolveTenant,
  MemoryTenantDirectory,
  RedisTenantDirectory
} from './tenancy/index.js'
export type {
  ClientIdPrefixOptions,
  ListenerOptions,
  RedisTenantDirectoryOptions,
  TenantDirectory,
  TenantRequest,
  TenantResolution,
  TenantResolver,
  UsernameDomainOptions
} from './tenancy/index.js'

// The contracts.
export type {
  Backend,
  BackendCapabilities,
  ClientHandle,
  DeliveryResult,
  FlappingRule,
  FlappingVerdict,
  Credentials,
  AuthenticationResult,
  AuthenticateFunction,
  SetupResult,
  SubscribeResult
} from './backend/backend.js'
export type {
  Session,
  Message,
  StoredSubscription,
  StoredWill,
  OutgoingRecord,
  QueuedMessage
} from './session/session.js'
export { willMessage } from './session/will.js'
export { isPromise } from './util/awaitable.js'
export type { Awaitable } from './util/awaitable.js'

// The errors of the Backend contract (lib/backend/errors.ts; TenantError, SessionTakenOverError
// and MqttError are exported below with tenancy and the codec).
export { BackendUnavailableError, NotInspectableError } from './backend/errors.js'

// Inspection of stored state (optional Backend methods behind the management API).
export type { BackendInspection, BackendCounts, SessionSummary, SessionDetails, SessionQuery, Page } from './backend/inspection.js'

// HTTP: health, Prometheus metrics, the REST management API, the dashboard.
export { createHttpHandler, listenHttp, httpConfigSchema, httpOptionsFromConfig, hashHttpPassword, readiness, DEFAULT_HTTP_PORT } from './http/index.js'
export type { HttpHandler, HttpListener, HttpOptions, HttpListenOptions, HttpAuthOptions, HttpUser, HttpConfig, Readiness, CheckResult } from './http/index.js'
export { createBrokerMetrics } from './metrics/broker-metrics.js'
export type { BrokerMetricsOptions } from './metrics/broker-metrics.js'

// The backend conformance suite.
export { backendConformance, FakeClient } from './backend/conformance/index.js'
export type { BackendFeatures, Delivery } from './backend/conformance/index.js'

// The wire codec.
export {
  Decoder,
  decodeAll,
  MAX_PACKET_SIZE,
  encode,
  encodedLength,
  PublishTemplate,
  writePublish,
  MqttError,
  MalformedPacketError,
  ProtocolError,
  PacketTooLargeError,
  UnsupportedProtocolVersionError,
  TopicNameInvalidError,
  TopicFilterInvalidError,
  NotAuthorizedError,
  SessionTakenOverError,
  ReasonCode,
  ConnectReturnCode,
  SUBACK_FAILURE,
  VALID_REASON_CODES,
  reasonCodeName,
  PacketTypeCode,
  PACKET_TYPE_NAMES
} from './packet/index.js'
export {
  checkTopicName,
  checkTopicFilter,
  isValidTopicName,
  isValidTopicFilter,
  topicMatches,
  parseSharedSubscription,
  isSystemTopic,
  SharedSubscriptionsNotSupportedError,
  WildcardSubscriptionsNotSupportedError
} from './packet/topic.js'
export type { TopicFilterOptions, SharedSubscription } from './packet/topic.js'
export type {
  DecoderOptions,
  EncodedPublish,
  PublishContent,
  MqttErrorOptions,
  ReasonCodeValue,
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
} from './packet/index.js'
