/**
 * Broker URLs for the load generator: `mqtt://`, `mqtts://`, `ws://`, `wss://`. Loopback only
 * unless the caller allows other addresses explicitly (a load generator pointed at someone else's
 * broker by a typo is a denial of service).
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import type { ConnTarget } from './conn.js'

/** Options of `parseTarget`. */
export interface TargetOptions {
  /** Allow hosts other than loopback (`--allow-remote`). */
  allowRemote?: boolean
  /** PEM file of the CA that signed the broker's certificate (TLS). */
  caFile?: string
  /** Do not verify the broker's certificate (TLS). */
  insecure?: boolean
}

/** True for localhost, 127.0.0.0/8 and ::1. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true
  return isIP(host) === 4 && host.startsWith('127.')
}

/** Parse a broker URL; throws with a clear message for a bad or (without allowRemote) non-loopback one. */
export function parseTarget(url: string, options: TargetOptions = {}): ConnTarget {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error(`not a broker URL: ${url} (mqtt://host:port, mqtts://, ws://, wss://)`)
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  if (!isLoopback(host) && options.allowRemote !== true) {
    throw new Error(`${host} is not a loopback address: pass --allow-remote to load another machine's broker`)
  }
  const kinds: Record<string, [ConnTarget['transport'], number]> = {
    'mqtt:': ['tcp', 1883],
    'tcp:': ['tcp', 1883],
    'mqtts:': ['tls', 8883],
    'tls:': ['tls', 8883],
    'ws:': ['ws', 80],
    'wss:': ['wss', 443]
  }
  const kind = kinds[parsed.protocol]
  if (kind === undefined) throw new Error(`unsupported scheme ${parsed.protocol} (mqtt, mqtts, ws, wss)`)
  const target: ConnTarget = { host, port: parsed.port === '' ? kind[1] : Number(parsed.port), transport: kind[0] }
  if (kind[0] === 'ws' || kind[0] === 'wss') target.path = parsed.pathname === '/' ? '/mqtt' : parsed.pathname
  if (kind[0] === 'tls' || kind[0] === 'wss') {
    target.tls = {}
    if (options.caFile !== undefined) target.tls.ca = readFileSync(options.caFile)
    if (options.insecure === true) target.tls.rejectUnauthorized = false
  }
  return target
}
