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
  /** QoS 0 deliveries dropped because the receiver's unsent output passed `maxBufferedBytes`. */
  outputDrops: number
  /** Times a connection's input was paused because its own unsent output passed `maxBufferedBytes`. */
  inputPauses: number
  /** Connections closed because their output did not drain within `sendTimeout` (0x97). */
  sendTimeouts: number
  /** Connections closed for a malformed packet or a protocol violation. */
  protocolErrors: number
  /** Connections closed for an unexpected error in their handling (0x83), logged. */
  internalErrors: number
  /** Topic names and filters refused for `maxTopicLength` / `maxTopicLevels` (0x90 / 0x8F). */
  topicLimitHits: number
  /** SUBSCRIBE entries refused for `maxSubscriptionsPerClient` (0x97). */
  subscriptionLimitHits: number
  /** Connections refused for `maxConnections`, `maxConnectionsPerListener` or `maxConnectionsPerAddress` (0x97). */
  connectionLimitHits: number
  /** Connections refused for `maxConnectRatePerAddress` (0x9F). */
  connectRateHits: number
  /** Connections refused for `maxConnectionsPerTenant` (0x97). */
  tenantConnectionLimitHits: number
  /** Client ids banned for flapping (`flappingMaxCount` connections within `flappingWindow`). */
  flappingBans: number
  /** Connections refused because their client id is banned for flapping (0x8A Banned). */
  bannedRefusals: number
  /** Retained PUBLISH packets the backend's retained store refused for its limits (MQTT 5 QoS 1/2: 0x97). */
  retainedLimitHits: number
  /** Packets refused for `maxUserProperties` (0x97). */
  userPropertyLimitHits: number
  /** 1 while the broker is overloaded (`maxHeapUsed`, `maxEventLoopLag`), else 0. */
  overloaded: number
  /** Connections refused while overloaded (0x89 Server busy). */
  overloadRefusals: number
  /** QoS 0 deliveries shed while overloaded. */
  overloadShed: number
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
    outputDrops: 0,
    inputPauses: 0,
    sendTimeouts: 0,
    protocolErrors: 0,
    internalErrors: 0,
    topicLimitHits: 0,
    subscriptionLimitHits: 0,
    connectionLimitHits: 0,
    connectRateHits: 0,
    tenantConnectionLimitHits: 0,
    flappingBans: 0,
    bannedRefusals: 0,
    retainedLimitHits: 0,
    userPropertyLimitHits: 0,
    overloaded: 0,
    overloadRefusals: 0,
    overloadShed: 0,
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
      'no-packet-id': 0,
      shed: 0
    },
    connectsRefused: new Map()
  }
}

/**
 * The limit and load counters of `stats` as `$SYS` values (topic name under the prefix → value):
 * `load/overloaded` (0 or 1) and one `limits/<name>` per limit counter. See docs/limits.md.
 */
export function limitValues(stats: BrokerStats): Record<string, string> {
  return {
    'load/overloaded': String(stats.overloaded),
    'limits/overload-refusals': String(stats.overloadRefusals),
    'limits/overload-shed': String(stats.overloadShed),
    'limits/output-drops': String(stats.outputDrops),
    'limits/input-pauses': String(stats.inputPauses),
    'limits/send-timeouts': String(stats.sendTimeouts),
    'limits/slow-consumers': String(stats.slowConsumers),
    'limits/queue-evictions': String(stats.queueEvictions),
    'limits/topic': String(stats.topicLimitHits),
    'limits/subscriptions': String(stats.subscriptionLimitHits),
    'limits/connections': String(stats.connectionLimitHits),
    'limits/connect-rate': String(stats.connectRateHits),
    'limits/tenant-connections': String(stats.tenantConnectionLimitHits),
    'limits/flapping-bans': String(stats.flappingBans),
    'limits/banned': String(stats.bannedRefusals),
    'limits/user-properties': String(stats.userPropertyLimitHits),
    'limits/retained': String(stats.retainedLimitHits),
    'limits/protocol-errors': String(stats.protocolErrors),
    'limits/internal-errors': String(stats.internalErrors)
  }
}
