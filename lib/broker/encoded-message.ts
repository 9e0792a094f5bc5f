import { PublishTemplate } from '../packet/publish-template.js'
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
 */
export class EncodedMessage {
  v4: PublishTemplate | undefined = undefined
  v5: PublishTemplate | undefined = undefined
}

/**
 * Cache the received bytes of a PUBLISH as the template variant (qos, retain, dup) of `message` at
 * the publisher's level, so receivers at that level get those very bytes (the packet id patched on
 * output). Only for a message without properties; a template that refuses the bytes keeps nothing.
 */
export function seedEncoded(
  message: Message,
  level: ProtocolLevel,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  raw: Buffer
): void {
  const template = new PublishTemplate(message, level === 5 ? 5 : 4)
  if (!template.seed(qos, retain, dup, raw)) return
  const cache = new EncodedMessage()
  if (level === 5) cache.v5 = template
  else cache.v4 = template
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
  if (level === 5) return (encoded.v5 ??= new PublishTemplate(message, 5))
  return (encoded.v4 ??= new PublishTemplate(message, 4))
}
