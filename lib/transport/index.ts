/** Transports: TCP, WebSocket and an in-memory pair, each handing the engine a `Connection`. */
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
