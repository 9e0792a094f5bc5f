import { PublishTemplate, SEED_REFUSED, seedOffset, variantKey } from '../packet/publish-template.js'
import type { EncodedPublish } from '../packet/publish-template.js'
import type { ProtocolLevel, QoS } from '../packet/types.js'
import type { Message } from '../session/session.js'

/**
 * A message as the engine sees it: the public `Message` plus the engine's private encoding cache,
 * kept on the message object itself (no side table, no allocation per receiver). Not part of the
 * Backend contract: a backend copies only the fields `Message` declares.
 */
export type EncodableMessage = Message & { encoded?: EncodedMessage }

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
 * one object for its encoding.
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
  const cache = new EncodedMessage()
  cache.bytes = raw
  cache.packetIdOffset = packetIdOffset
  cache.seedFormat = format
  cache.seedKey = variantKey(qos, retain, dup)
  ;(message as EncodableMessage).encoded = cache
}

/** The template of `message` for `level`, encoded on first use and cached on the message. */
export function templateFor(message: Message, level: ProtocolLevel): PublishTemplate {
  let encoded = (message as EncodableMessage).encoded
  // instanceof: a value some other code left under that name is not trusted.
  if (!(encoded instanceof EncodedMessage)) {
    encoded = new EncodedMessage()
    ;(message as EncodableMessage).encoded = encoded
  }
  if (level === 5) return (encoded.v5 ??= withSeed(new PublishTemplate(message, 5), encoded))
  return (encoded.v4 ??= withSeed(new PublishTemplate(message, 4), encoded))
}

/** The bytes of `message` as the variant (qos, retain, dup) at `level`: the received ones when they are that. */
export function variantFor(message: Message, level: ProtocolLevel, qos: QoS, retain: boolean, dup: boolean): EncodedPublish {
  const encoded = (message as EncodableMessage).encoded
  if (encoded instanceof EncodedMessage && encoded.seedFormat === (level === 5 ? 5 : 4) && encoded.seedKey === variantKey(qos, retain, dup)) {
    return encoded
  }
  return templateFor(message, level).variant(qos, retain, dup)
}

/** A new template of the seed's format starts with the seed as its variant (not encoded again). */
function withSeed(template: PublishTemplate, encoded: EncodedMessage): PublishTemplate {
  if (encoded.seedFormat === template.protocolLevel) template.adopt(encoded.seedKey, encoded)
  return template
}
