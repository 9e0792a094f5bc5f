import { PublishTemplate, SEED_REFUSED, seedOffset, variantKey } from '../packet/publish-template.js'
import type { EncodedPublish } from '../packet/publish-template.js'
import type { ProtocolLevel, QoS } from '../packet/types.js'
import type { Message } from '../session/session.js'

/**
 * A message as the engine sees it: the public `Message` plus the engine's private encoding cache,
 * kept on the message object itself (no side table, no allocation per receiver). Not part of the
 * Backend contract: a backend copies only the fields `Message` declares.
 */
export type EncodableMessage = Message & { encoded?: EncodedMessage | Buffer }

/** The `bytes` of an `EncodedMessage` without received bytes. */
const NO_BYTES = Buffer.alloc(0)

/**
 * The engine's cache on a message (`EncodableMessage.encoded`): one `PublishTemplate` per wire format (levels 3 and 4
 * share bytes; level 5 adds properties). Every receiver of a message at one level gets the same
 * bytes; only the packet identifier is patched per receiver while copying into its output batch.
 *
 * A received message starts with its received bytes as one variant, kept by this object itself
 * (it is that `EncodedPublish`: `bytes`, `packetIdOffset`), without a template: receivers at the
 * publisher's level taking that variant (the common case) never need one, and the message costs
 * one object for its encoding. A QoS 0 message received at level 3 or 4 costs none: its received
 * bytes alone are the cache (`EncodableMessage.encoded` is that Buffer, see `seedBytes`), turned into
 * an `EncodedMessage` when a receiver needs another variant.
 */
export class EncodedMessage implements EncodedPublish {
  v4: PublishTemplate | undefined = undefined
  v5: PublishTemplate | undefined = undefined
  /** The received bytes (a seeded variant), or an empty Buffer. Never written. */
  bytes: Buffer = NO_BYTES
  /** Offset of the packet identifier in `bytes` (-1: QoS 0). */
  packetIdOffset = -1
  /** Wire format (4 or 5) of the received bytes; 0: none. */
  seedFormat = 0
  /** `variantKey` of the received bytes. */
  seedKey = -1
}

/**
 * Cache the received bytes of a PUBLISH as the variant (qos, retain, dup) of `message` at the
 * publisher's level, so receivers at that level get those very bytes (the packet id patched on
 * output). Only for a message without properties; bytes that are not exactly the message's
 * encoding (`seedOffset`) are not kept.
 */
export function seedEncoded(
  message: Message,
  level: ProtocolLevel,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  raw: Buffer
): void {
  const format = level === 5 ? 5 : 4
  const packetIdOffset = seedOffset(message, format, qos, retain, dup, raw)
  if (packetIdOffset === SEED_REFUSED) return
  if (packetIdOffset < 0 && format === 4) {
    // QoS 0 at level 3/4, the paced publisher's case: the bytes alone, no cache object (`seedBytes`).
    ;(message as EncodableMessage).encoded = raw
    return
  }
  ;(message as EncodableMessage).encoded = seedCache(raw, packetIdOffset, format, variantKey(qos, retain, dup))
}

function seedCache(raw: Buffer, packetIdOffset: number, format: number, key: number): EncodedMessage {
  const cache = new EncodedMessage()
  cache.bytes = raw
  cache.packetIdOffset = packetIdOffset
  cache.seedFormat = format
  cache.seedKey = key
  return cache
}

/**
 * The received bytes of `message` when they are the variant (qos, retain, dup) at `level` and the
 * cache holds them alone (a QoS 0 PUBLISH received at level 3 or 4): nothing to patch, written as
 * they are. Undefined otherwise (`variantFor` then gives the variant).
 */
export function seedBytes(message: Message, level: ProtocolLevel, qos: QoS, retain: boolean, dup: boolean): Buffer | undefined {
  const encoded = (message as EncodableMessage).encoded
  if (!Buffer.isBuffer(encoded) || level === 5 || qos !== 0 || dup) return undefined
  return retain === (((encoded[0] as number) & 0x01) !== 0) ? encoded : undefined
}

/**
 * The `EncodedMessage` of `message`, made now if it has none; received bytes kept alone (a QoS 0
 * PUBLISH of level 3/4) become its seed. instanceof: a value some other code left under that name
 * is not trusted.
 */
function cacheOf(message: Message): EncodedMessage {
  const encoded = (message as EncodableMessage).encoded
  if (encoded instanceof EncodedMessage) return encoded
  const cache =
    Buffer.isBuffer(encoded) && encoded.length > 0
      ? seedCache(encoded, -1, 4, variantKey(0, ((encoded[0] as number) & 0x01) !== 0, false))
      : new EncodedMessage()
  ;(message as EncodableMessage).encoded = cache
  return cache
}

/** The template of `message` for `level`, encoded on first use and cached on the message. */
export function templateFor(message: Message, level: ProtocolLevel): PublishTemplate {
  const encoded = cacheOf(message)
  if (level === 5) return (encoded.v5 ??= withSeed(new PublishTemplate(message, 5), encoded))
  return (encoded.v4 ??= withSeed(new PublishTemplate(message, 4), encoded))
}

/** The bytes of `message` as the variant (qos, retain, dup) at `level`: the received ones when they are that. */
export function variantFor(message: Message, level: ProtocolLevel, qos: QoS, retain: boolean, dup: boolean): EncodedPublish {
  const encoded = cacheOf(message)
  if (encoded.seedFormat === (level === 5 ? 5 : 4) && encoded.seedKey === variantKey(qos, retain, dup)) {
    return encoded
  }
  return templateFor(message, level).variant(qos, retain, dup)
}

/** A new template of the seed's format starts with the seed as its variant (not encoded again). */
function withSeed(template: PublishTemplate, encoded: EncodedMessage): PublishTemplate {
  if (encoded.seedFormat === template.protocolLevel) template.adopt(encoded.seedKey, encoded)
  return template
}
