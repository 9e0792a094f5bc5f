import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { HttpAuthOptions } from './options.js'

/** What a request presented. */
export type AuthOutcome = 'ok' | 'missing' | 'invalid' | 'remote'

/** scrypt parameters of new hashes (N = 2^15: about 50 ms, 32 MiB). */
const SCRYPT_N = 32768
const SCRYPT_R = 8
const SCRYPT_P = 1

/** A scrypt hash of `password` for the `http.auth.users` configuration. */
export function hashHttpPassword(password: string): string {
  const salt = randomBytes(16)
  const hash = scryptSync(password, salt, 32, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P, maxmem: 128 * SCRYPT_N * SCRYPT_R * 2 })
  return `scrypt$${SCRYPT_N}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64')}$${hash.toString('base64')}`
}

/** Equal in constant time, whatever the lengths (both sides are hashed first). */
function same(a: string | Buffer, b: string | Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

/** Most scrypt checks running at once; more wrong guesses are refused at once (no queue to fill). */
const MAX_HASHING = 4

let hashing = 0

/**
 * Checks a password against its stored form. scrypt runs on libuv's thread pool (never on the
 * event loop, which serves MQTT), at most `MAX_HASHING` at a time.
 */
async function checkPassword(stored: string, given: string): Promise<boolean> {
  if (!stored.startsWith('scrypt$')) return same(stored, given)
  const [, n, r, p, salt, hash] = stored.split('$')
  if (n === undefined || r === undefined || p === undefined || salt === undefined || hash === undefined) return false
  if (hashing >= MAX_HASHING) return false
  const expected = Buffer.from(hash, 'base64')
  const N = Number(n)
  const R = Number(r)
  hashing++
  try {
    const derived = await new Promise<Buffer>((resolve, reject) =>
      scrypt(given, Buffer.from(salt, 'base64'), expected.length, { N, r: R, p: Number(p), maxmem: 128 * N * R * 2 }, (error, key) => (error === null ? resolve(key) : reject(error)))
    )
    return same(derived, expected)
  } catch {
    return false
  } finally {
    hashing--
  }
}

/** True for loopback peers (127.0.0.0/8, ::1, IPv4-mapped loopback). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}

/**
 * Checks a request's `Authorization` header against bearer tokens and basic users. Verified
 * basic credentials are cached (by a hash of the header) so scrypt runs once per user, not per
 * request.
 */
export class HttpAuthenticator {
  readonly #tokens: string[]
  readonly #users: Map<string, string>
  readonly #allowAnonymous: boolean
  readonly #verified = new Set<string>()

  constructor(options: HttpAuthOptions | undefined, allowAnonymous: boolean) {
    this.#tokens = options?.tokens ?? []
    this.#users = new Map((options?.users ?? []).map((u) => [u.username, u.password]))
    this.#allowAnonymous = allowAnonymous
  }

  /** True when credentials are configured. */
  get configured(): boolean {
    return this.#tokens.length > 0 || this.#users.size > 0
  }

  /** Whether `request` may proceed. */
  async check(request: IncomingMessage): Promise<AuthOutcome> {
    if (!this.configured) {
      if (this.#allowAnonymous || isLoopback(request.socket.remoteAddress)) return 'ok'
      return 'remote'
    }
    const header = request.headers.authorization
    if (header === undefined || header === '') return 'missing'
    const space = header.indexOf(' ')
    const scheme = header.slice(0, space < 0 ? header.length : space).toLowerCase()
    const value = space < 0 ? '' : header.slice(space + 1).trim()
    if (scheme === 'bearer') {
      let ok = false
      for (const token of this.#tokens) if (same(token, value)) ok = true
      return ok ? 'ok' : 'invalid'
    }
    if (scheme === 'basic') {
      const key = createHash('sha256').update(header).digest('base64')
      if (this.#verified.has(key)) return 'ok'
      const decoded = Buffer.from(value, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon < 0) return 'invalid'
      const stored = this.#users.get(decoded.slice(0, colon))
      if (stored === undefined || !(await checkPassword(stored, decoded.slice(colon + 1)))) return 'invalid'
      if (this.#verified.size > 1000) this.#verified.clear()
      this.#verified.add(key)
      return 'ok'
    }
    return 'invalid'
  }
}
