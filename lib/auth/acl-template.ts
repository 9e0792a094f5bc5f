/**
 * `AclTemplate`: the decisions that connections with the same rules *before substitution* share.
 *
 * Rules with `%u`, `%c` or `%t` give every connection its own filters (one ACL per client id with
 * a `devices/%c/#` rule), so a per-connection cache alone makes a `#` subscriber pay a lookup in
 * its own cache for every delivery, and a fan-out of one message to 100 such subscribers 100
 * lookups. Most topics cannot be touched by those rules at all (`bench/x` by `devices/%c/#`): for
 * them the decision is the same for every connection of the template and is taken once, cached
 * once, and remembered for the last topic (the 100 deliveries of one message share the topic
 * string, so 99 of them cost one string comparison).
 *
 * A template answers ALLOW or DENY when no rule with a substitution could match the topic (each
 * substituted level taken as any one level, `$`-topics included), and DEPENDS otherwise; the
 * connection's own `ClientAcl` then decides exactly. This is conservative, never different: a rule
 * that does not apply to a connection (a missing value) only makes the template say DEPENDS more
 * often. A connection with a deny rule made unsafe by its values (which denies everything) uses no
 * template. A template lives for one generation of rules (`AccessControl` makes new ones after any
 * change), so a rule change reaches cached decisions.
 */
import { topicMatches } from '../packet/topic.js'
import type { AclRule } from './acl-types.js'

/** A template's answer: allowed, denied, or it depends on the connection (a rule with a substitution could match). */
export const Verdict = { Allow: 1, Deny: 2, Depends: 3 } as const
export type Verdict = (typeof Verdict)[keyof typeof Verdict]

/** Most answers cached per template and direction; the cache starts over when full. */
const CACHE_LIMIT = 4096

/** A filter with substitutions as a filter of its levels, each substituted level made `+`. */
interface Pattern {
  filter: string
  /** The first level has a substitution: it may also match a `$` level (a client id `$x`). */
  dollar: boolean
}

function pattern(filter: string): Pattern {
  const levels = filter.split('/').map((level) => (level.includes('%') ? '+' : level))
  return { filter: levels.join('/'), dollar: filter.split('/', 1)[0]!.includes('%') }
}

const DOLLAR = 0x24

function couldMatch(patterns: readonly Pattern[], topic: string): boolean {
  for (const p of patterns) {
    if (topicMatches(p.filter, topic)) return true
    // '+' first matches no '$' topic, a substituted value starting with '$' would: ask the connection.
    if (p.dollar && topic.charCodeAt(0) === DOLLAR) {
      const slash = topic.indexOf('/')
      if (topicMatches(p.filter, `x${slash === -1 ? '' : topic.slice(slash)}`)) return true
    }
  }
  return false
}

/** One direction (read or write) of a template. */
class Direction {
  readonly #deny: string[]
  readonly #denyPatterns: Pattern[]
  readonly #allow: string[]
  readonly #allowPatterns: Pattern[]
  readonly #defaultAllow: boolean
  readonly #cache = new Map<string, Verdict>()
  #lastTopic: string | undefined = undefined
  #last: Verdict = Verdict.Depends

  constructor(rules: readonly AclRule[], grants: (access: AclRule['access']) => boolean, defaultAllow: boolean) {
    const fixed = (r: AclRule): boolean => !r.filter.includes('%')
    const denies = rules.filter((r) => r.access === 'deny')
    const allows = rules.filter((r) => grants(r.access))
    this.#deny = denies.filter(fixed).map((r) => r.filter)
    this.#denyPatterns = denies.filter((r) => !fixed(r)).map((r) => pattern(r.filter))
    this.#allow = allows.filter(fixed).map((r) => r.filter)
    this.#allowPatterns = allows.filter((r) => !fixed(r)).map((r) => pattern(r.filter))
    this.#defaultAllow = defaultAllow
  }

  /** The shared answer for `topic` (the hot path: one string comparison for the last topic). */
  verdict(topic: string): Verdict {
    if (topic === this.#lastTopic) return this.#last
    let verdict = this.#cache.get(topic)
    if (verdict === undefined) {
      verdict = this.#decide(topic)
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear()
      this.#cache.set(topic, verdict)
    }
    this.#lastTopic = topic
    this.#last = verdict
    return verdict
  }

  #decide(topic: string): Verdict {
    // A deny wins over everything; one that depends on the connection leaves it to the connection.
    for (const deny of this.#deny) if (topicMatches(deny, topic)) return Verdict.Deny
    if (couldMatch(this.#denyPatterns, topic)) return Verdict.Depends
    if (this.#defaultAllow) return Verdict.Allow
    for (const allow of this.#allow) if (topicMatches(allow, topic)) return Verdict.Allow
    return couldMatch(this.#allowPatterns, topic) ? Verdict.Depends : Verdict.Deny
  }
}

/** The shared decisions of the connections whose applicable rules (unsubstituted) and default are equal. */
export class AclTemplate {
  readonly #read: Direction
  readonly #write: Direction

  /** `rules`: the rules that apply (selectors already matched), unsubstituted. */
  constructor(rules: readonly AclRule[], defaultAllow: boolean) {
    this.#read = new Direction(rules, (a) => a === 'read' || a === 'readwrite', defaultAllow)
    this.#write = new Direction(rules, (a) => a === 'write' || a === 'readwrite', defaultAllow)
  }

  /** The key under which connections share a template. */
  static key(rules: readonly AclRule[], defaultAllow: boolean): string {
    return JSON.stringify([defaultAllow, rules.map((r) => [r.filter, r.access])])
  }

  read(topic: string): Verdict {
    return this.#read.verdict(topic)
  }

  write(topic: string): Verdict {
    return this.#write.verdict(topic)
  }
}
