/**
 * Password hashes: our salted scrypt format, and Mosquitto's `$6$` (SHA-512) and `$7$`
 * (PBKDF2-SHA512) hashes, read so that users move over without resetting passwords.
 *
 * Our format (version 1), one string without spaces:
 *
 * ```
 * $scrypt$v=1$n=16384,r=8,p=1$<salt, base64>$<64-byte key, base64>
 * ```
 *
 * Mosquitto's: `$6$<salt b64>$<SHA-512(password ‖ salt) b64>` and
 * `$7$<iterations>$<salt b64>$<PBKDF2-HMAC-SHA512(password, salt, iterations, 64) b64>`.
 *
 * Checks are constant-time (`timingSafeEqual` over equal lengths) and run off the event loop
 * (scrypt and PBKDF2 on libuv's thread pool).
 */
import { createHash, pbkdf2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import type { ScryptOptions } from 'node:crypto'

/** Parameters of a new scrypt hash. */
export interface ScryptParameters {
  /** CPU/memory cost, a power of two (default 16384). */
  n?: number
  r?: number
  p?: number
}

const DEFAULTS = { n: 16384, r: 8, p: 1 }
const KEY_BYTES = 64

function scryptKey(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keylen, options, (error, key) => (error === null ? resolve(key) : reject(error)))
  })
}

function pbkdf2Key(password: string, salt: Buffer, iterations: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, keylen, 'sha512', (error, key) => (error === null ? resolve(key) : reject(error)))
  })
}

function scryptOptions(n: number, r: number, p: number): ScryptOptions {
  // Room for the parameters we accept (128 * n * r bytes) plus a margin.
  return { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }
}

/** Hash a password for the password file (a fresh 16-byte salt). */
export async function hashPassword(password: string, parameters: ScryptParameters = {}): Promise<string> {
  const { n, r, p } = { ...DEFAULTS, ...parameters }
  if (!Number.isInteger(Math.log2(n)) || n < 2 || r < 1 || p < 1) throw new RangeError('bad scrypt parameters')
  const salt = randomBytes(16)
  const key = await scryptKey(password, salt, KEY_BYTES, scryptOptions(n, r, p))
  return `$scrypt$v=1$n=${n},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`
}

/** A parsed hash, ready to check passwords against. */
export type ParsedHash =
  | { scheme: 'scrypt'; n: number; r: number; p: number; salt: Buffer; key: Buffer }
  | { scheme: 'sha512'; salt: Buffer; key: Buffer }
  | { scheme: 'pbkdf2-sha512'; iterations: number; salt: Buffer; key: Buffer }

const B64 = '[A-Za-z0-9+/]+={0,2}'
const SCRYPT = new RegExp(`^\\$scrypt\\$v=1\\$n=(\\d+),r=(\\d+),p=(\\d+)\\$(${B64})\\$(${B64})$`)
const MOSQ6 = new RegExp(`^\\$6\\$(${B64})\\$(${B64})$`)
const MOSQ7 = new RegExp(`^\\$7\\$(\\d+)\\$(${B64})\\$(${B64})$`)

/** Parse a stored hash; throws a TypeError (without the hash in the message) when unknown or malformed. */
export function parseHash(hash: string): ParsedHash {
  let m = SCRYPT.exec(hash)
  if (m !== null) {
    const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])]
    if (!Number.isInteger(Math.log2(n)) || n < 2 || n > 2 ** 20 || r < 1 || r > 32 || p < 1 || p > 16) {
      throw new TypeError('scrypt hash with unsupported parameters')
    }
    return { scheme: 'scrypt', n, r, p, salt: Buffer.from(m[4]!, 'base64'), key: Buffer.from(m[5]!, 'base64') }
  }
  m = MOSQ7.exec(hash)
  if (m !== null) {
    const iterations = Number(m[1])
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) throw new TypeError('$7$ hash with a bad iteration count')
    return { scheme: 'pbkdf2-sha512', iterations, salt: Buffer.from(m[2]!, 'base64'), key: Buffer.from(m[3]!, 'base64') }
  }
  m = MOSQ6.exec(hash)
  if (m !== null) return { scheme: 'sha512', salt: Buffer.from(m[1]!, 'base64'), key: Buffer.from(m[2]!, 'base64') }
  if (hash.startsWith('$scrypt$')) throw new TypeError('unsupported version or malformed $scrypt$ hash')
  throw new TypeError('unknown password hash format (expected $scrypt$, $7$ or $6$)')
}

/** The key `password` derives under the parameters of `hash`. */
function derive(hash: ParsedHash, password: string): Promise<Buffer> {
  switch (hash.scheme) {
    case 'scrypt':
      return scryptKey(password, hash.salt, hash.key.length, scryptOptions(hash.n, hash.r, hash.p))
    case 'pbkdf2-sha512':
      return pbkdf2Key(password, hash.salt, hash.iterations, hash.key.length)
    case 'sha512':
      return Promise.resolve(createHash('sha512').update(password).update(hash.salt).digest())
  }
}

/** Whether `password` matches `hash`, compared in constant time. */
export async function verifyPassword(hash: ParsedHash, password: string): Promise<boolean> {
  const key = await derive(hash, password)
  return key.length === hash.key.length && timingSafeEqual(key, hash.key)
}

/**
 * A hash of the same scheme and cost as `like` (or our default) over a random password and salt:
 * checking an unknown user against it takes as long as checking a known one, so that a wrong user
 * name and a wrong password cannot be told apart by time.
 */
export function dummyHash(like?: ParsedHash): ParsedHash {
  const salt = randomBytes(like?.salt.length ?? 16)
  const key = randomBytes(like?.key.length ?? KEY_BYTES)
  if (like === undefined) return { scheme: 'scrypt', ...DEFAULTS, salt, key }
  return { ...like, salt, key }
}
