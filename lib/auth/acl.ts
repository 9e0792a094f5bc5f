/**
 * ACL rules: which topics a connection may publish to (write) and receive from (read).
 *
 * Semantics (docs/security.md, "ACL rules"):
 * - A rule applies to a connection when every selector it has (`user`, `client`, `tenant`) equals
 *   the connection's; a rule with no selector applies to everyone.
 * - `%u`, `%c`, `%t` in a filter are replaced by the user name, client id and tenant. A rule whose
 *   value is missing (no user name, default tenant) does not apply. A value holding `+`, `#` or `/`
 *   would widen the filter: an allow rule is then skipped, a deny rule then denies everything
 *   (it fails closed).
 * - Order does not matter: a deny rule matching the topic always wins over any allow rule
 *   (a deny overrides a broader allow); else an allow rule granting the access decides; else the
 *   default (deny unless configured otherwise).
 * - Publish: the topic is checked for `write`. Delivery: the topic is checked for `read`, once per
 *   delivery, through a per-connection cache.
 * - Subscribe to a filter F (for `$share/{group}/F`, the inner F): refused when one deny rule covers
 *   all of F; else allowed when some read rule overlaps F (a topic exists that both match), or by
 *   default; each delivery is then checked, so a `#` subscriber gets only the topics it may read.
 * - Filters follow MQTT matching: a filter starting with `+` or `#` matches no `$` topic, so `#`
 *   grants nothing under `$SYS/`: a rule must name `$SYS/...` [MQTT-4.7.2-1].
 */
import { isValidTopicFilter, parseSharedSubscription, topicMatches } from '../packet/topic.js'
import { AclTemplate, Verdict } from './acl-template.js'

export type { AclAccess, AclRule, AclSubject } from './acl-types.js'
import type { AclAccess, AclRule, AclSubject } from './acl-types.js'

const ACCESS: readonly AclAccess[] = ['read', 'write', 'readwrite', 'deny']

/** Throws a TypeError naming `where` when `rule` is not a valid ACL rule. */
export function checkAclRule(rule: AclRule, where = 'ACL rule'): void {
  if (typeof rule.filter !== 'string' || rule.filter.length === 0) throw new TypeError(`${where}: filter must be a non-empty string`)
  if (!ACCESS.includes(rule.access)) throw new TypeError(`${where}: access must be one of ${ACCESS.join(', ')}`)
  const probe = rule.filter.replace(/%[uct]/g, 'x')
  if (!isValidTopicFilter(probe, { shared: false })) throw new TypeError(`${where}: invalid topic filter ${JSON.stringify(rule.filter)}`)
}

/** Result of substituting `%u %c %t`: the filter, or why it cannot be used. */
function substitute(filter: string, subject: AclSubject): string | 'missing' | 'unsafe' {
  if (!filter.includes('%')) return filter
  let problem: 'missing' | 'unsafe' | undefined
  const out = filter.replace(/%([uct])/g, (_m, key: string) => {
    const value = key === 'u' ? subject.username : key === 'c' ? subject.clientId : subject.tenant
    if (value === undefined || value.length === 0) {
      problem = 'missing'
      return ''
    }
    if (/[+#/]/.test(value)) {
      problem ??= 'unsafe'
      return ''
    }
    return value
  })
  return problem ?? out
}

/** Most answers cached per ACL (per direction); the cache starts over when full. */
const CACHE_LIMIT = 1024

/**
 * The ACL of one connection: the rules that apply to it, substituted, and a cache of answers per
 * topic. Cheap to ask: it asks its `AclTemplate` first (shared by the connections with the same
 * unsubstituted rules: for the last topic one string comparison, else one Map lookup), and only
 * for a topic that a rule with a substitution could match, its own cache.
 */
export class ClientAcl {
  readonly #deny: string[] = []
  readonly #read: string[] = []
  readonly #write: string[] = []
  readonly #defaultAllow: boolean
  readonly #readCache = new Map<string, boolean>()
  readonly #writeCache = new Map<string, boolean>()
  /** True when nothing can be refused on read (no deny rule, default allow): deliveries skip checks. */
  readonly readsAll: boolean
  /**
   * True when a rule with `%c` applies: the ACL is its connection's own (no two live connections
   * share a client id), so there is nothing to gain from sharing it.
   */
  readonly perClient: boolean
  /**
   * The key of the template this ACL may share decisions through (`AclTemplate.key` of the rules
   * that apply, unsubstituted), or undefined when it must decide alone (a deny rule made unsafe).
   */
  readonly templateKey: string | undefined
  readonly #template: AclTemplate | undefined
  /** A deny rule was made unsafe by a value: everything is denied, `$` topics included (fail closed). */
  readonly #denyAll: boolean

  /**
   * `template`: the shared decisions to use; by default one of this ACL's own (shared by nobody).
   * `AccessControl` passes the template of `templateKey` it keeps for the current generation.
   */
  constructor(rules: readonly AclRule[], subject: AclSubject, defaultAllow: boolean, template?: (key: string, applicable: AclRule[], defaultAllow: boolean) => AclTemplate) {
    this.#defaultAllow = defaultAllow
    const applicable: AclRule[] = []
    let unsafeDeny = false
    let perClient = false
    for (const rule of rules) {
      if (rule.user !== undefined && rule.user !== subject.username) continue
      if (rule.client !== undefined && rule.client !== subject.clientId) continue
      if (rule.tenant !== undefined && rule.tenant !== subject.tenant) continue
      applicable.push(rule)
      const filter = substitute(rule.filter, subject)
      if (filter === 'missing') continue
      if (rule.filter.includes('%c')) perClient = true
      if (filter === 'unsafe') {
        // A deny rule fails closed; an allow rule is not widened.
        if (rule.access === 'deny') {
          // '#' matches no '$' topic: every '$' topic is denied by #decide / maySubscribe.
          this.#deny.push('#')
          unsafeDeny = true
        }
        continue
      }
      if (rule.access === 'deny') this.#deny.push(filter)
      if (rule.access === 'read' || rule.access === 'readwrite') this.#read.push(filter)
      if (rule.access === 'write' || rule.access === 'readwrite') this.#write.push(filter)
    }
    this.#denyAll = unsafeDeny
    this.perClient = perClient
    this.readsAll = defaultAllow && this.#deny.length === 0
    this.templateKey = unsafeDeny ? undefined : AclTemplate.key(applicable, defaultAllow)
    const key = this.templateKey
    this.#template = key === undefined ? undefined : template === undefined ? new AclTemplate(applicable, defaultAllow) : template(key, applicable, defaultAllow)
  }

  /**
   * A string equal for two ACLs that decide everything alike (same substituted filters, same
   * default): connections with equal signatures can share one ACL and its caches.
   */
  get signature(): string {
    return JSON.stringify([this.#defaultAllow, this.#deny, this.#read, this.#write])
  }

  /** May the connection receive a message on `topic`? */
  mayRead(topic: string): boolean {
    const shared = this.#template?.read(topic)
    if (shared === Verdict.Allow) return true
    if (shared === Verdict.Deny) return false
    const cached = this.#readCache.get(topic)
    if (cached !== undefined) return cached
    return remember(this.#readCache, topic, this.#decide(topic, this.#read))
  }

  /** May the connection publish on `topic`? */
  mayWrite(topic: string): boolean {
    const shared = this.#template?.write(topic)
    if (shared === Verdict.Allow) return true
    if (shared === Verdict.Deny) return false
    const cached = this.#writeCache.get(topic)
    if (cached !== undefined) return cached
    return remember(this.#writeCache, topic, this.#decide(topic, this.#write))
  }

  /** May the connection subscribe to `filter` (a `$share/{group}/` prefix is looked through)? */
  maySubscribe(filter: string): boolean {
    const inner = parseSharedSubscription(filter)?.filter ?? filter
    if (this.#denyAll) return false
    for (const deny of this.#deny) if (filterCovers(deny, inner)) return false
    if (this.#defaultAllow) return true
    for (const read of this.#read) if (filtersOverlap(read, inner)) return true
    return false
  }

  #decide(topic: string, allowed: string[]): boolean {
    if (this.#denyAll) return false
    for (const deny of this.#deny) if (topicMatches(deny, topic)) return false
    if (this.#defaultAllow) return true
    for (const filter of allowed) if (topicMatches(filter, topic)) return true
    return false
  }
}

function remember(cache: Map<string, boolean>, topic: string, answer: boolean): boolean {
  if (cache.size >= CACHE_LIMIT) cache.clear()
  cache.set(topic, answer)
  return answer
}

/** Whether a filter's first level is a wildcard (it then matches no `$` topic). */
function startsWild(levels: string[]): boolean {
  return levels[0] === '+' || levels[0] === '#'
}

/**
 * Whether some topic name matches both filters (non-shared, valid). `#` matches its parent level
 * and everything below; `+` one level; a filter starting with a wildcard matches no `$` topic.
 */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/')
  const y = b.split('/')
  // A topic starting with '$' needs a literal '$' level in both; a wildcard-first filter has none.
  if ((startsWild(x) && y[0]!.startsWith('$')) || (startsWild(y) && x[0]!.startsWith('$'))) return false
  for (let i = 0; ; i++) {
    const p = x[i]
    const q = y[i]
    if (p === '#' || q === '#') return true
    if (p === undefined || q === undefined) {
      // One filter ended: the other must end too, or go on with just "#" (matching the parent).
      return p === q || (p === undefined ? q === '#' : p === '#')
    }
    if (p !== '+' && q !== '+' && p !== q) return false
  }
}

/** Whether every topic that `inner` matches is matched by `outer` (both non-shared, valid). */
export function filterCovers(outer: string, inner: string): boolean {
  const o = outer.split('/')
  const n = inner.split('/')
  // `outer` starting with a wildcard matches no '$' topic: it covers `inner` only if neither does.
  if (startsWild(o) && n[0]!.startsWith('$')) return false
  for (let i = 0; ; i++) {
    const p = o[i]
    const q = n[i]
    if (p === '#') return true
    if (p === undefined && q === undefined) return true
    if (p === undefined || q === undefined) return false
    if (q === '#') return false
    if (p === '+') continue
    if (q === '+' || p !== q) return false
  }
}
