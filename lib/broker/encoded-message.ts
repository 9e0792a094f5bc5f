import { PublishTemplate, seedVariant, variantKey } from '../packet/publish-template.js'
import type { EncodedPublish } from '../packet/publish-template.js'
import type { ProtocolLevel, QoS } from '../packet/types.js'
import type { Message } from '../session/session.js'

/**
 * A message as the engine sees it: the public `Message` plus the engine's private encoding cache,
 * kept on the message object itself (no side table, no allocation per receiver). Not part of the
 * Backend contract: a backend copies only the fields `Message` declares.
 */
export type EncodableMessage = Message & { encoded?: EncodedMessage }

/**
 * The engine's cache on a message (`EncodableMessage.encoded`): one `PublishTemplate` per wire format (levels 3 and 4
 * share bytes; level 5 adds properties). Every receiver of a message at one level gets the same
 * bytes; only the packet identifier is patched per receiver while copying into its output batch.
 *
 * A received message starts with its received bytes as one variant (`seed`), without a template:
 * receivers at the publisher's level taking that variant (the common case) never need one.
 */
export class EncodedMessage {
  v4: PublishTemplate | undefined = undefined
  v5: PublishTemplate | undefined = undefined
  /** The received bytes as the variant `seedKey` at wire format `seedFormat` (4 or 5; 0: none). */
  seed: EncodedPublish | undefined = undefined
  seedFormat = 0
  seedKey = -1
}

/**
 * Cache the received bytes of a PUBLISH as the variant (qos, retain, dup) of `message` at the
 * publisher's level, so receivers at that level get those very bytes (the packet id patched on
 * output). Only for a message without properties; bytes that are not exactly the message's
 * encoding (`seedVariant`) are not kept.
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
  const seed = seedVariant(message, format, qos, retain, dup, raw)
  if (seed === undefined) return
  const cache = new EncodedMessage()
  cache.seed = seed
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
  if (
    encoded instanceof EncodedMessage &&
    encoded.seed !== undefined &&
    encoded.seedFormat === (level === 5 ? 5 : 4) &&
    encoded.seedKey === variantKey(qos, retain, dup)
  ) {
    return encoded.seed
  }
  return templateFor(message, level).variant(qos, retain, dup)
}

/** A new template of the seed's format starts with the seed as its variant (not encoded again). */
function withSeed(template: PublishTemplate, encoded: EncodedMessage): PublishTemplate {
  if (encoded.seed !== undefined && encoded.seedFormat === template.protocolLevel) template.adopt(encoded.seedKey, encoded.seed)
  return template
}
