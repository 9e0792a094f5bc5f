import { BlockList, isIP } from 'node:net'

/**
 * The peers whose word about the real client address is believed (PROXY protocol header,
 * `X-Forwarded-For`): single addresses and CIDR ranges, IPv4 and IPv6. An IPv4 peer seen as an
 * IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as dual-stack sockets report it) matches its IPv4
 * entry.
 */
export class TrustedProxies {
  private readonly list = new BlockList()
  /** The entries as configured, for messages. */
  readonly entries: readonly string[]

  /** Throws `TypeError` naming the entry for anything that is not an address or a CIDR range. */
  constructor(entries: readonly string[]) {
    this.entries = [...entries]
    for (const entry of entries) {
      const slash = entry.indexOf('/')
      const address = slash < 0 ? entry : entry.slice(0, slash)
      const family = isIP(address)
      if (family === 0) throw new TypeError(`trusted proxy "${entry}" is not an IP address or CIDR range`)
      const type = family === 4 ? 'ipv4' : 'ipv6'
      if (slash < 0) {
        this.list.addAddress(address, type)
        continue
      }
      const bitsText = entry.slice(slash + 1)
      const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN
      if (!(bits >= 0 && bits <= (family === 4 ? 32 : 128))) {
        throw new TypeError(`trusted proxy "${entry}" has an invalid prefix length`)
      }
      this.list.addSubnet(address, bits, type)
    }
  }

  /** True when no entry was configured (nobody is trusted). */
  get empty(): boolean {
    return this.entries.length === 0
  }

  /** Whether `address` (a bare IP address, no port) is one of the trusted peers. */
  trusts(address: string | undefined): boolean {
    if (address === undefined || this.entries.length === 0) return false
    const plain = unmapped(address)
    const family = isIP(plain)
    if (family === 0) return false
    return this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6')
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; any other address unchanged. */
export function unmapped(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

/** An address and port as `ConnectionInfo.remoteAddress` shows them: `1.2.3.4:5`, `[::1]:5`. */
export function formatAddress(address: string | undefined, port: number | undefined): string | undefined {
  if (address === undefined) return undefined
  const plain = unmapped(address)
  const host = isIP(plain) === 6 ? `[${plain}]` : plain
  return port === undefined ? host : `${host}:${port}`
}
