import { MAX_PACKET_SIZE } from '../packet/decoder.js'
import type { ConnectProperties } from '../packet/types.js'
import type { TenantCounters } from './sys.js'
import { InboundAliases, OutboundAliases } from './topic-aliases.js'

/** The counters of a connection before CONNECT (and of every one while `$SYS` is off): never read. */
const UNCOUNTED: TenantCounters = { received: 0, sent: 0 }

/**
 * What CONNECT negotiated for one connection (keepalive, both sides' MQTT 5 limits) and the
 * protocol counters that go with it: unacknowledged incoming QoS 1/2 PUBLISH against our Receive
 * Maximum, topic aliases in both directions, the `$SYS` counters of the client's tenant. Plain
 * data, no reference to the socket: handlers read it as `ctx.state`, the connection's output stage
 * reads the limits towards the client from it.
 */
export class ConnectionState {
  /** Keepalive in ms (0: none); the broker's wheel closes the connection after 1.5× of silence. */
  keepaliveMs = 0
  /**
   * Largest packet the client accepts (its MQTT 5 Maximum Packet Size; by default the largest MQTT
   * can express, a small integer where `Number.MAX_SAFE_INTEGER` would be a boxed double per connection).
   */
  maxOutgoingPacketSize = MAX_PACKET_SIZE
  /** The client's Receive Maximum (MQTT 5): our outbound window is at most this. */
  clientReceiveMaximum = 65535
  /** MQTT 5 topic aliases towards the client (its Topic Alias Maximum > 0). */
  aliases: OutboundAliases | undefined = undefined
  /** The Session Expiry Interval the CONNECT asked for (MQTT 5; DISCONNECT may not raise it from 0). */
  connectSessionExpiry = 0
  /** MQTT 5 Request Problem Information (false: no reason strings / user properties on most acks). */
  problemInformation = true
  /** The counters of the client's tenant, from CONNACK on (for `$SYS`). */
  counters: TenantCounters = UNCOUNTED
  /**
   * Unacknowledged incoming QoS 1/2 PUBLISH allowed: our Receive Maximum, told to (and binding on)
   * MQTT 5 clients only; older clients are bounded by the 65,535 packet identifiers.
   */
  private receiveMaximum = 65535
  private inboundUnacked = 0
  private inboundAliases: InboundAliases | undefined = undefined

  /**
   * An MQTT 5 CONNECT: our Receive Maximum binds the client, and its properties set Receive
   * Maximum (outbound window), Maximum Packet Size, Topic Alias Maximum (outbound aliases),
   * Request Problem Information and the Session Expiry Interval it asked for.
   */
  negotiate(properties: ConnectProperties | undefined, receiveMaximum: number): void {
    this.receiveMaximum = receiveMaximum
    if (properties === undefined) return
    if (properties.receiveMaximum !== undefined) this.clientReceiveMaximum = properties.receiveMaximum
    if (properties.maximumPacketSize !== undefined) this.maxOutgoingPacketSize = properties.maximumPacketSize
    const aliasMaximum = properties.topicAliasMaximum
    if (aliasMaximum !== undefined && aliasMaximum > 0) this.aliases = new OutboundAliases(aliasMaximum)
    if (properties.requestProblemInformation === false) this.problemInformation = false
    if (properties.sessionExpiryInterval !== undefined) this.connectSessionExpiry = properties.sessionExpiryInterval
  }

  /** An incoming QoS 1/2 PUBLISH starts: false when the client exceeded our Receive Maximum. */
  acquireInbound(): boolean {
    if (this.inboundUnacked >= this.receiveMaximum) return false
    this.inboundUnacked++
    return true
  }

  /** An incoming QoS 1/2 exchange ended (PUBACK or PUBCOMP sent). */
  releaseInbound(): void {
    if (this.inboundUnacked > 0) this.inboundUnacked--
  }

  /**
   * MQTT 5 inbound topic alias: bind `alias` to a non-empty `topic`, or look up an empty one.
   * Undefined when an empty topic names an alias never bound. The caller checks the range.
   */
  resolveTopicAlias(alias: number, topic: string): string | undefined {
    return (this.inboundAliases ??= new InboundAliases()).resolve(alias, topic)
  }
}
