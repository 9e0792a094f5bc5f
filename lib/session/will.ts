import type { Message, StoredWill } from './session.js'

/**
 * The message a will becomes when it is published: by the engine when a connection ends, or by a
 * backend that publishes wills itself (a delayed will it keeps, the will of a connection whose
 * process died). The publisher is the broker: `origin` is the client id (for No Local),
 * `tenant` routes it (`Message.tenant`), the Will Delay Interval is left out (it belongs to the
 * will, not to the PUBLISH), and a Message Expiry Interval counts from `now`.
 *
 * @param now the clock, ms since the epoch (default `Date.now()`).
 */
export function willMessage(will: StoredWill, clientId: string, tenant?: string, now?: number): Message {
  const message: Message = { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, origin: clientId }
  if (tenant !== undefined) message.tenant = tenant
  const properties = will.properties
  if (properties !== undefined) {
    const { willDelayInterval: _delay, ...publishProperties } = properties
    if (Object.keys(publishProperties).length > 0) message.properties = publishProperties
    if (publishProperties.messageExpiryInterval !== undefined) message.receivedAt = now ?? Date.now()
  }
  return message
}
