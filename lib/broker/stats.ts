import type { DropReason } from './events.js'

/**
 * Counters of one broker, for metrics and tests. Plain numbers, updated in place: read them any
 * time (`broker.stats`), never write them.
 */
export interface BrokerStats {
  /** Connections accepted (all transports). */
  connectionsAccepted: number
  /** Connections currently open. */
  connectionsOpen: number
  /** Clients whose CONNECT was accepted. */
  clientsConnected: number
  /** PUBLISH packets received from clients. */
  publishesReceived: number
  /** PUBLISH packets sent to clients. */
  publishesSent: number
  /** Deliveries held in a client's outgoing queue (inflight window full). */
  deliveriesQueued: number
  /** Deliveries dropped: No Local, expired, too large, queue or buffer full, disconnected. */
  deliveriesDropped: number
  /** QoS 0 messages evicted from a full outgoing queue. */
  queueEvictions: number
  /** Clients disconnected because their outgoing queue overflowed with QoS 1/2 messages. */
  slowConsumers: number
  /** Times a publisher was paused because a receiver's socket had too much unsent output. */
  backpressurePauses: number
  /** Connections closed for a malformed packet or a protocol violation. */
  protocolErrors: number
  /** PUBLISH packets received, by QoS (index 0, 1, 2). */
  publishesReceivedByQos: [number, number, number]
  /** PUBLISH packets sent, by QoS. */
  publishesSentByQos: [number, number, number]
  /** Deliveries dropped, by reason. */
  droppedByReason: Record<DropReason, number>
  /**
   * CONNECTs refused, by MQTT 5 reason code (3.1/3.1.1 return codes counted under the MQTT 5
   * code that means the same: 1 → 0x84, 2 → 0x85, 3 → 0x88, 4 → 0x86, 5 → 0x87).
   */
  connectsRefused: Map<number, number>
}

/** MQTT 3.1.1 CONNACK return codes 1..5 as the MQTT 5 reason codes that mean the same. */
const V5_OF_RETURN_CODE = [0, 0x84, 0x85, 0x88, 0x86, 0x87]

/** Counts a refused CONNECT (its CONNACK's code at `level`). Not on the message path. */
export function countRefusal(stats: BrokerStats, code: number, level: number): void {
  const key = level === 5 ? code : (V5_OF_RETURN_CODE[code] ?? code)
  stats.connectsRefused.set(key, (stats.connectsRefused.get(key) ?? 0) + 1)
}

/** A zeroed `BrokerStats`. */
export function createStats(): BrokerStats {
  return {
    connectionsAccepted: 0,
    connectionsOpen: 0,
    clientsConnected: 0,
    publishesReceived: 0,
    publishesSent: 0,
    deliveriesQueued: 0,
    deliveriesDropped: 0,
    queueEvictions: 0,
    slowConsumers: 0,
    backpressurePauses: 0,
    protocolErrors: 0,
    publishesReceivedByQos: [0, 0, 0],
    publishesSentByQos: [0, 0, 0],
    droppedByReason: {
      'no-local': 0,
      expired: 0,
      'too-large': 0,
      'queue-full': 0,
      evicted: 0,
      'buffer-full': 0,
      disconnected: 0,
      'no-packet-id': 0
    },
    connectsRefused: new Map()
  }
}
