/**
 * Topic names and topic filters: validation, shared subscription parsing and matching
 * (MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7 and 4.8.2). Pure functions used by the codec, the
 * engine and the backends. The boolean checks and `topicMatches` allocate nothing; the `check*`
 * functions allocate only the error they return.
 */
import { ReasonCode } from './reason-codes.js'
import { TopicFilterInvalidError, TopicNameInvalidError } from './errors.js'
import type { MqttErrorOptions } from './errors.js'

/** The longest topic name or filter in UTF-8 bytes: it travels as a two-byte-length string [MQTT-4.7.3-3]. */
export const MAX_TOPIC_LENGTH = 65_535

/** The prefix that marks a shared subscription's topic filter [MQTT-4.8.2-1]. */
export const SHARED_PREFIX = '$share/'

const SLASH = 0x2f // '/'
const PLUS = 0x2b // '+'
const HASH = 0x23 // '#'
const DOLLAR = 0x24 // '$'
const NUL = 0x00

/**
 * A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4 bytes), so a
 * string of this many code units or fewer always fits and its byte length need not be computed.
 */
const SAFE_LENGTH = Math.floor(MAX_TOPIC_LENGTH / 3)

/** True if `s` encodes to more than `MAX_TOPIC_LENGTH` bytes of UTF-8. */
function tooLong(s: string): boolean {
  if (s.length <= SAFE_LENGTH) return false
  if (s.length > MAX_TOPIC_LENGTH) return true
  let bytes = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
    if (bytes > MAX_TOPIC_LENGTH) return true
  }
  return false
}

// Problems are reported as constant strings (the error message), so the boolean fast paths allocate
// nothing and the `check*` functions build the error only on failure.
const NAME_EMPTY = 'topic name is empty'
const NAME_WILDCARD = 'topic name contains a wildcard character (+ or #)'
const NAME_NUL = 'topic name contains U+0000'
const NAME_TOO_LONG = 'topic name is longer than 65535 bytes'

const FILTER_EMPTY = 'topic filter is empty'
const FILTER_HASH = 'multi-level wildcard # must be the last level and alone in it'
const FILTER_PLUS = 'single-level wildcard + must be alone in its level'
const FILTER_NUL = 'topic filter contains U+0000'
const FILTER_TOO_LONG = 'topic filter is longer than 65535 bytes'
const SHARE_NAME = 'shared subscription needs a share name of at least one character without / + #'
const SHARE_FILTER = 'shared subscription needs a topic filter after $share/{ShareName}/'
const SHARED_REFUSED = 'shared subscriptions are not supported'
const WILDCARD_REFUSED = 'wildcard subscriptions are not supported'

function topicNameProblem(topic: string): string | undefined {
  const n = topic.length
  // [MQTT-4.7.3-1] topic names are at least one character long.
  if (n === 0) return NAME_EMPTY
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i)
    // [MQTT-3.3.2-2] [MQTT-4.7.1-1] no wildcards in a topic name.
    if (c === PLUS || c === HASH) return NAME_WILDCARD
    // [MQTT-4.7.3-2] [MQTT-1.5.4-2] no null character.
    if (c === NUL) return NAME_NUL
  }
  if (tooLong(topic)) return NAME_TOO_LONG
  return undefined
}

/** Checks the wildcard placement of an ordinary (non-shared) filter between `start` and the end. */
function filterSyntaxProblem(filter: string, start: number): string | undefined {
  const n = filter.length
  for (let i = start; i < n; i++) {
    const c = filter.charCodeAt(i)
    if (c === HASH) {
      // [MQTT-4.7.1-2] '#' alone in its level and the last character of the filter.
      if (i !== n - 1 || (i > start && filter.charCodeAt(i - 1) !== SLASH)) return FILTER_HASH
    } else if (c === PLUS) {
      // [MQTT-4.7.1-3] '+' occupies an entire level.
      if (i > start && filter.charCodeAt(i - 1) !== SLASH) return FILTER_PLUS
      if (i < n - 1 && filter.charCodeAt(i + 1) !== SLASH) return FILTER_PLUS
    } else if (c === NUL) {
      // [MQTT-4.7.3-2]
      return FILTER_NUL
    }
  }
  return undefined
}

function hasWildcard(filter: string, start: number): boolean {
  for (let i = start; i < filter.length; i++) {
    const c = filter.charCodeAt(i)
    if (c === PLUS || c === HASH) return true
  }
  return false
}

/** Options of `checkTopicFilter` and `isValidTopicFilter`. */
export interface TopicFilterOptions {
  /**
   * Whether `$share/{ShareName}/{filter}` filters are accepted as shared subscriptions (default
   * true). When false, such a filter is refused with reason code 0x9E (Shared Subscriptions not
   * supported); a server that does not support them must refuse them that way (MQTT 5.0 3.9.3).
   */
  shared?: boolean
  /**
   * Whether `+` and `#` are accepted (default true). When false, a filter with a wildcard is refused
   * with reason code 0xA2 (Wildcard Subscriptions not supported).
   */
  wildcards?: boolean
}

function topicFilterProblem(filter: string, shared: boolean, wildcards: boolean): string | undefined {
  const n = filter.length
  // [MQTT-4.7.3-1] topic filters are at least one character long.
  if (n === 0) return FILTER_EMPTY
  let start = 0
  if (filter.startsWith(SHARED_PREFIX)) {
    if (!shared) return SHARED_REFUSED
    // [MQTT-4.8.2-1] a ShareName of at least one character; [MQTT-4.8.2-2] without '/', '+', '#'.
    const p = SHARED_PREFIX.length
    let i = p
    for (; i < n; i++) {
      const c = filter.charCodeAt(i)
      if (c === SLASH) break
      if (c === PLUS || c === HASH || c === NUL) return SHARE_NAME
    }
    if (i === p) return SHARE_NAME
    // The ShareName is followed by '/' and a non-empty topic filter [MQTT-4.8.2-1] [MQTT-4.7.3-1].
    if (i >= n - 1) return SHARE_FILTER
    start = i + 1
  }
  const syntax = filterSyntaxProblem(filter, start)
  if (syntax !== undefined) return syntax
  if (tooLong(filter)) return FILTER_TOO_LONG
  if (!wildcards && hasWildcard(filter, start)) return WILDCARD_REFUSED
  return undefined
}

/**
 * A `TopicFilterInvalidError` with reason code 0x9E: the filter is a shared subscription and the
 * server does not support them. It is a `TopicFilterInvalidError` so that callers that only ask
 * "is this filter acceptable" need one `instanceof`; its `reasonCode` is the one to send.
 */
export class SharedSubscriptionsNotSupportedError extends TopicFilterInvalidError {
  override name = 'SharedSubscriptionsNotSupportedError'
  override readonly reasonCode: number = ReasonCode.SharedSubscriptionsNotSupported
}

/**
 * A `TopicFilterInvalidError` with reason code 0xA2: the filter has a wildcard and the server does
 * not support wildcard subscriptions.
 */
export class WildcardSubscriptionsNotSupportedError extends TopicFilterInvalidError {
  override name = 'WildcardSubscriptionsNotSupportedError'
  override readonly reasonCode: number = ReasonCode.WildcardSubscriptionsNotSupported
}

/**
 * Validates a topic name (PUBLISH, will topic): not empty, no `+` or `#` [MQTT-3.3.2-2]
 * [MQTT-4.7.1-1], no U+0000 [MQTT-4.7.3-2], at most 65,535 bytes of UTF-8 [MQTT-4.7.3-3]. Returns
 * a `TopicNameInvalidError` (0x90) describing the first problem found, or undefined if valid.
 * (An empty topic name with an MQTT 5 topic alias is the codec's business, not this function's.)
 */
export function checkTopicName(
  topic: string,
  errorOptions?: MqttErrorOptions
): TopicNameInvalidError | undefined {
  const problem = topicNameProblem(topic)
  return problem === undefined ? undefined : new TopicNameInvalidError(problem, errorOptions)
}

/** The last topic name `isValidTopicName` accepted ('' is never valid, so never a false hit). */
let lastValidName = ''

/**
 * `checkTopicName(topic) === undefined`, without allocating. The last valid name is remembered:
 * a publisher's repeated topic (the same string, from the decoder's `TopicMemo`) is one comparison.
 */
export function isValidTopicName(topic: string): boolean {
  if (topic === lastValidName) return true
  if (topicNameProblem(topic) !== undefined) return false
  lastValidName = topic
  return true
}

/**
 * Validates a topic filter (SUBSCRIBE, UNSUBSCRIBE): not empty [MQTT-4.7.3-1], `#` only as the last
 * level and alone in it [MQTT-4.7.1-2], `+` alone in its level [MQTT-4.7.1-3], no U+0000
 * [MQTT-4.7.3-2], at most 65,535 bytes of UTF-8 [MQTT-4.7.3-3]. A filter starting with `$share/` is
 * a shared subscription: its ShareName must be at least one character without `/`, `+` or `#`
 * [MQTT-4.8.2-1] [MQTT-4.8.2-2], followed by `/` and a non-empty, itself valid topic filter.
 *
 * Returns a `TopicFilterInvalidError` (0x8F) for a malformed filter; with `shared: false` a
 * `SharedSubscriptionsNotSupportedError` (0x9E) for any `$share/` filter; with `wildcards: false` a
 * `WildcardSubscriptionsNotSupportedError` (0xA2) for a well-formed filter with a wildcard. Both are
 * subclasses of `TopicFilterInvalidError`. Returns undefined if the filter is acceptable.
 *
 * MQTT 3.1.1 has no shared subscriptions: whether a 3.1.1 client's `$share/...` filter is treated as
 * shared is the caller's decision (pass `shared: false` to refuse it).
 */
export function checkTopicFilter(
  filter: string,
  options?: TopicFilterOptions,
  errorOptions?: MqttErrorOptions
): TopicFilterInvalidError | undefined {
  const problem = topicFilterProblem(filter, options?.shared ?? true, options?.wildcards ?? true)
  if (problem === undefined) return undefined
  if (problem === SHARED_REFUSED) return new SharedSubscriptionsNotSupportedError(problem, errorOptions)
  if (problem === WILDCARD_REFUSED) {
    return new WildcardSubscriptionsNotSupportedError(problem, errorOptions)
  }
  return new TopicFilterInvalidError(problem, errorOptions)
}

/** `checkTopicFilter(filter, options) === undefined`, without allocating. */
export function isValidTopicFilter(filter: string, options?: TopicFilterOptions): boolean {
  return topicFilterProblem(filter, options?.shared ?? true, options?.wildcards ?? true) === undefined
}

/** A shared subscription's parts: `$share/{group}/{filter}`. */
export interface SharedSubscription {
  /** The ShareName. */
  group: string
  /** The topic filter the group subscribes to (what messages are matched against). */
  filter: string
}

/**
 * Splits `$share/{ShareName}/{filter}` into its share name and inner filter. Returns undefined if
 * `filter` does not start with `$share/`, or has no non-empty share name followed by `/` and a
 * non-empty filter. It does not check the share name's characters or the inner filter's wildcards:
 * validate with `checkTopicFilter` first.
 */
export function parseSharedSubscription(filter: string): SharedSubscription | undefined {
  if (!filter.startsWith(SHARED_PREFIX)) return undefined
  const p = SHARED_PREFIX.length
  const slash = filter.indexOf('/', p)
  if (slash <= p || slash === filter.length - 1) return undefined
  return { group: filter.slice(p, slash), filter: filter.slice(slash + 1) }
}

/** True if `topic` is a `$` topic (e.g. `$SYS/...`), reserved for server use [MQTT-4.7.2-1]. */
export function isSystemTopic(topic: string): boolean {
  return topic.charCodeAt(0) === DOLLAR
}

/**
 * True if the (valid, non-shared) topic filter `filter` matches the topic name `topic`.
 * `+` matches exactly one level (possibly empty), `#` matches the parent level and any number of
 * child levels, so `sport/#` matches `sport` [MQTT-4.7.1-2]; a filter starting with `+` or `#`
 * never matches a topic starting with `$` [MQTT-4.7.2-1]. Levels compare exactly (case-sensitive,
 * no normalisation) [MQTT-4.7.3-4]. `$share/` is not interpreted: pass a shared subscription's inner
 * filter. The result for an invalid filter is unspecified (but it does not throw). Allocates nothing.
 */
export function topicMatches(filter: string, topic: string): boolean {
  const fn = filter.length
  const tn = topic.length
  const first = filter.charCodeAt(0)
  if ((first === PLUS || first === HASH) && topic.charCodeAt(0) === DOLLAR) return false
  let f = 0
  let t = 0
  // Each turn of the loop matches one level; f and t are at the start of that level.
  while (f < fn) {
    const c = filter.charCodeAt(f)
    if (c === HASH) return true
    if (c === PLUS) {
      f++
      while (t < tn && topic.charCodeAt(t) !== SLASH) t++
    } else {
      while (f < fn) {
        const fc = filter.charCodeAt(f)
        if (fc === SLASH) break
        if (t >= tn || topic.charCodeAt(t) !== fc) return false
        f++
        t++
      }
      if (t < tn && topic.charCodeAt(t) !== SLASH) return false
    }
    // Both at the end of a level: either the end of the string or a '/'.
    if (f === fn) return t === tn
    if (t === tn) {
      // The topic ended and the filter goes on: only "/#" can follow, matching the parent level.
      return f + 2 === fn && filter.charCodeAt(f + 1) === HASH
    }
    f++
    t++
  }
  // The filter ended right after a '/': the topic must end there too (an empty last level).
  return t === tn
}
