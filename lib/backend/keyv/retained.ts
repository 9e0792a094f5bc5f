import { topicMatches } from '../../packet/topic.js'
import { isMessageExpired } from '../../session/memory-session.js'
import type { Message } from '../../session/session.js'
import { decodeMessage, encodeMessage } from './codec.js'
import type { TenantKeys } from './keys.js'
import type { RedisLink } from './redis-link.js'
import { STORE_RETAINED } from './routing-scripts.js'

/** Topics per ZRANGEBYLEX page and per HMGET. */
const PAGE = 1000

/**
 * Stores `message` as the retained message of its topic (hash + sorted index + byte count, one
 * script), or deletes it when the payload is empty [MQTT-3.3.1-10] [MQTT-3.3.1-11]. Returns false
 * when refused: the store holds `max` topics and this one is new, or its encoded bytes would go
 * beyond `maxBytes` (per tenant, cluster-wide).
 */
export async function storeRetainedMessage(
  link: RedisLink,
  keys: TenantKeys,
  message: Message,
  max: number,
  maxBytes: number = Number.MAX_SAFE_INTEGER
): Promise<boolean> {
  const value = message.payload.length === 0 ? '' : encodeMessage({ ...message, retain: true })
  const stored = await link.script<number>(
    STORE_RETAINED,
    [keys.retained, keys.retainedIndex, retainedBytesKey(keys)],
    [message.topic, value, String(max), String(maxBytes)]
  )
  return stored === 1
}

/** STRING: the encoded bytes of a tenant's retained messages (kept by STORE_RETAINED). */
export function retainedBytesKey(keys: TenantKeys): string {
  return `${keys.retained}:bytes`
}

/**
 * The retained messages matching `filter` (not a shared subscription), without expired ones
 * [MQTT-3.3.2-5]. An exact filter is one HGET; a wildcard filter pages ZRANGEBYLEX over the index
 * from the filter's literal prefix, matches each topic (which keeps `$` topics from leading
 * wildcards [MQTT-4.7.2-1]) and reads the messages with HMGET. Never SCAN.
 */
export async function findRetained(link: RedisLink, keys: TenantKeys, filter: string, now: number): Promise<Message[]> {
  let values: (Buffer | null)[]
  if (!filter.includes('+') && !filter.includes('#')) {
    values = [await link.send<Buffer | null>(['HGET', keys.retained, filter])]
  } else {
    const topics = await matchingTopics(link, keys, filter)
    values = []
    for (let i = 0; i < topics.length; i += PAGE) {
      values.push(...(await link.send<(Buffer | null)[]>(['HMGET', keys.retained, ...topics.slice(i, i + PAGE)])))
    }
  }
  const out: Message[] = []
  for (const bytes of values) {
    if (bytes === null) continue
    const message = decodeMessage(bytes)
    if (!isMessageExpired(message, now)) out.push(message)
  }
  return out
}

/** Retained topics matching a wildcard filter: ZRANGEBYLEX on its literal prefix, then matched. */
async function matchingTopics(link: RedisLink, keys: TenantKeys, filter: string): Promise<string[]> {
  const plus = filter.indexOf('+')
  const hash = filter.indexOf('#')
  const cut = Math.min(plus < 0 ? filter.length : plus, hash < 0 ? filter.length : hash)
  let prefix = filter.slice(0, cut)
  // `a/#` also matches `a` itself [MQTT-4.7.1-2]: search from `a`.
  if (prefix.endsWith('/')) prefix = prefix.slice(0, -1)
  // The upper bound is the byte 0xFF, not the character U+00FF (which is sent as c3 bf in UTF-8).
  const min: string | Buffer = prefix === '' ? '-' : Buffer.from(`[${prefix}`, 'utf8')
  const max: string | Buffer = prefix === '' ? '+' : Buffer.concat([Buffer.from(`[${prefix}`, 'utf8'), Buffer.from([0xff])])
  const out: string[] = []
  for (let offset = 0; ; offset += PAGE) {
    const page = await link.sendText<string[]>(['ZRANGEBYLEX', keys.retainedIndex, min, max, 'LIMIT', String(offset), String(PAGE)])
    for (const topic of page) if (topicMatches(filter, topic)) out.push(topic)
    if (page.length < PAGE) return out
  }
}
