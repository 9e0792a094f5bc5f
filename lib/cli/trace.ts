/**
 * `mqttc -d`: one line per packet sent or received, in the style of mosquitto_pub/sub's `-d`
 * (`Client <id> sending PUBLISH (d0, q1, r0, m1, 'a/b', ... (5 bytes))`), written to stderr.
 */
import type { PacketTrace } from '../client/index.js'

/** The line for one packet (no newline). */
export function traceLine(clientId: string, trace: PacketTrace): string {
  const packet = trace.packet
  const verb = trace.direction === 'out' ? 'sending' : 'received'
  const head = `Client ${clientId} ${verb} ${packet.type.toUpperCase()}`
  switch (packet.type) {
    case 'connack':
      return `${head} (${packet.reasonCode})`
    case 'publish':
      return `${head} (d${packet.dup ? 1 : 0}, q${packet.qos}, r${packet.retain ? 1 : 0}, m${packet.packetId ?? 0}, '${packet.topic}', ... (${packet.payload.length} bytes))`
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return trace.direction === 'out' ? `${head} (m${packet.packetId}, rc${packet.reasonCode ?? 0})` : `${head} (Mid: ${packet.packetId}, RC:${packet.reasonCode ?? 0})`
    case 'subscribe':
      return packet.subscriptions.map((s) => `${head} (Mid: ${packet.packetId}, Topic: ${s.topicFilter}, QoS: ${s.qos}, Options: 0x${subscriptionOptions(s).toString(16).padStart(2, '0')})`).join('\n')
    case 'unsubscribe':
      return packet.topicFilters.map((filter) => `${head} (Mid: ${packet.packetId}, Topic: ${filter})`).join('\n')
    case 'disconnect':
    case 'auth':
      return packet.reasonCode === undefined || trace.direction === 'out' ? head : `${head} (${packet.reasonCode})`
    default:
      return head
  }
}

/** The SUBSCRIBE options byte without the QoS (as mosquitto prints it). */
function subscriptionOptions(s: { noLocal?: boolean; retainAsPublished?: boolean; retainHandling?: number }): number {
  return (s.noLocal === true ? 0x04 : 0) | (s.retainAsPublished === true ? 0x08 : 0) | ((s.retainHandling ?? 0) << 4)
}
