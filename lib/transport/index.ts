/**
 * Transports: configured listeners (TCP, TLS, WebSocket, secure WebSocket, Unix socket; PROXY
 * protocol and X-Forwarded-For behind load balancers), the simple TCP and WebSocket listeners, and an
 * in-memory pair, each handing the engine a `Connection`.
 */
export { startListeners, ListenerConfigError } from './listeners.js'
export type {
  BoundListener,
  CertificateIdentity,
  ClientCertificateMode,
  HttpEndpoint,
  HttpHandler,
  ListenerConfig,
  ListenerKind,
  Listeners,
  ListenerTarget,
  TlsListenerConfig,
  TransportLog
} from './listeners.js'
export { parseProxyHeader, ProxyProtocolError } from './proxy-protocol.js'
export type { ProxyHeader } from './proxy-protocol.js'
export { listenTcp } from './tcp.js'
export type { TcpListenOptions } from './tcp.js'
export { listenWebSocket } from './ws.js'
export type { WebSocketListenOptions } from './ws.js'
export { memoryPair } from './memory.js'
export type { MemoryPair } from './memory.js'
export type {
  Connection,
  ConnectionHandler,
  ConnectionInfo,
  Listener,
  ListenAddress,
  PeerCertificate,
  TransportKind
} from './connection.js'
