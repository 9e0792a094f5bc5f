/**
 * Connection rules: an ordered ledger deciding who may connect at all, before any password is
 * checked. Each rule has conditions (all given ones must hold) and an action; the first rule whose
 * conditions all hold decides; when none does, the default decides (allow unless configured).
 *
 * Conditions: `client_id`, `username`, `listener`, `certificate_subject` (glob patterns: `*` any
 * run of characters, `?` one character; a rule on `username` never matches a connection without
 * one), `address` (an IP address or CIDR block, IPv4 or IPv6; IPv4-mapped IPv6 addresses are
 * compared as IPv4), `tenant` (exact).
 */
import { BlockList, isIP } from 'node:net'
import type { ConnectionInfo } from '../transport/connection.js'

/** One connection rule (the configuration's snake_case keys). */
export interface ConnectionRule {
  action: 'allow' | 'deny'
  client_id?: string
  username?: string
  /** An address or CIDR block, or a list of them. */
  address?: string | string[]
  listener?: string
  certificate_subject?: string
  tenant?: string
}

/** What a connection rule looks at. */
export interface ConnectionFacts {
  clientId: string
  username: string | undefined
  tenant: string | undefined
  connection: ConnectionInfo | undefined
}

interface CompiledRule {
  allow: boolean
  clientId?: RegExp
  username?: RegExp
  listener?: RegExp
  subject?: RegExp
  tenant?: string
  addresses?: BlockList
}

/** A glob (`*`, `?`) as an anchored regular expression. */
export function globPattern(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${body}$`, 's')
}

/** The IP address of a remote address ("1.2.3.4:5", "[::1]:5", "::1"), IPv4-mapped IPv6 unwrapped. */
export function hostOf(remoteAddress: string | undefined): string | undefined {
  if (remoteAddress === undefined) return undefined
  let host = remoteAddress
  if (isIP(host) === 0) {
    const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(host)
    if (bracket !== null) host = bracket[1]!
    else {
      const colon = host.lastIndexOf(':')
      if (colon > 0) host = host.slice(0, colon)
    }
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)
  if (mapped !== null) host = mapped[1]!
  return isIP(host) === 0 ? undefined : host
}

function addressList(value: string | string[], where: string): BlockList {
  const list = new BlockList()
  for (const entry of Array.isArray(value) ? value : [value]) {
    const [address, prefix] = entry.split('/')
    const family = isIP(address ?? '')
    if (family === 0) throw new TypeError(`${where}: ${JSON.stringify(entry)} is not an IP address or CIDR block`)
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (prefix === undefined) list.addAddress(address!, type)
    else {
      const bits = Number(prefix)
      if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
        throw new TypeError(`${where}: bad prefix length in ${JSON.stringify(entry)}`)
      }
      list.addSubnet(address!, bits, type)
    }
  }
  return list
}

/** The ledger of connection rules, compiled once. Throws a TypeError for a bad rule. */
export class ConnectionRules {
  readonly #rules: CompiledRule[]
  readonly #defaultAllow: boolean

  constructor(rules: readonly ConnectionRule[], defaultAction: 'allow' | 'deny' = 'allow') {
    this.#defaultAllow = defaultAction === 'allow'
    this.#rules = rules.map((rule, i) => {
      const where = `connection rule ${i + 1}`
      if (rule.action !== 'allow' && rule.action !== 'deny') throw new TypeError(`${where}: action must be allow or deny`)
      const compiled: CompiledRule = { allow: rule.action === 'allow' }
      if (rule.client_id !== undefined) compiled.clientId = globPattern(rule.client_id)
      if (rule.username !== undefined) compiled.username = globPattern(rule.username)
      if (rule.listener !== undefined) compiled.listener = globPattern(rule.listener)
      if (rule.certificate_subject !== undefined) compiled.subject = globPattern(rule.certificate_subject)
      if (rule.tenant !== undefined) compiled.tenant = rule.tenant
      if (rule.address !== undefined) compiled.addresses = addressList(rule.address, where)
      return compiled
    })
  }

  /** The number of rules. */
  get size(): number {
    return this.#rules.length
  }

  /** Whether the connection may go on to authentication; the index of the deciding rule (-1: default). */
  decide(facts: ConnectionFacts): { allow: boolean; rule: number } {
    for (let i = 0; i < this.#rules.length; i++) {
      if (matches(this.#rules[i]!, facts)) return { allow: this.#rules[i]!.allow, rule: i }
    }
    return { allow: this.#defaultAllow, rule: -1 }
  }
}

function matches(rule: CompiledRule, facts: ConnectionFacts): boolean {
  if (rule.clientId !== undefined && !rule.clientId.test(facts.clientId)) return false
  if (rule.username !== undefined && (facts.username === undefined || !rule.username.test(facts.username))) return false
  if (rule.tenant !== undefined && rule.tenant !== facts.tenant) return false
  const info = facts.connection
  if (rule.listener !== undefined && (info?.listener === undefined || !rule.listener.test(info.listener))) return false
  if (rule.subject !== undefined) {
    const subject = info?.peerCertificate?.subject
    if (subject === undefined || !rule.subject.test(subject)) return false
  }
  if (rule.addresses !== undefined) {
    const host = hostOf(info?.remoteAddress)
    if (host === undefined || !rule.addresses.check(host, isIP(host) === 4 ? 'ipv4' : 'ipv6')) return false
  }
  return true
}
