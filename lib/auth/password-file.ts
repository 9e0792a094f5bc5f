/**
 * The password file: one user per line, Mosquitto-compatible.
 *
 * ```
 * # comment lines and blank lines are kept as they are
 * alice:$scrypt$v=1$n=16384,r=8,p=1$<salt b64>$<key b64>
 * bob:$7$101$<salt b64>$<key b64>                         (read from a Mosquitto file as-is)
 * carol:$scrypt$v=1$...$...:$scram-sha-256$i=4096$<salt>$<storedKey>$<serverKey>
 * ```
 *
 * A line is `user:hash`, optionally followed by `:` and the user's SCRAM-SHA-256 credentials (for
 * MQTT 5 enhanced authentication, written by `mqtt-broker passwd --scram`). User names hold no `:`
 * and no control characters. See `password-hash.ts` for the hash formats.
 */
import { readFileSync } from 'node:fs'
import type { ScramCredentials } from './scram.js'
import type { Authenticator, AuthRequest, AuthVerdict } from './authenticator.js'
import { ReasonCode } from '../packet/reason-codes.js'
import { dummyHash, parseHash, verifyPassword } from './password-hash.js'
import type { ParsedHash } from './password-hash.js'

/** One user of a password file. */
export interface PasswordEntry {
  username: string
  /** The hash as written. */
  hash: string
  parsed: ParsedHash
  scram?: ScramCredentials
}

/** A line that could not be read: where, and why (never the line's content). */
export class PasswordFileError extends Error {
  override readonly name = 'PasswordFileError'
}

const SCRAM = /^\$scram-sha-256\$i=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/

/** Whether `username` can be stored in a password file. */
export function isValidFileUsername(username: string): boolean {
  // eslint-disable-next-line no-control-regex
  return username.length > 0 && !/[:\u0000-\u001f\u007f]/.test(username)
}

/** SCRAM credentials as a password file field. */
export function formatScram(c: ScramCredentials): string {
  return `$scram-sha-256$i=${c.iterations}$${c.salt.toString('base64')}$${c.storedKey.toString('base64')}$${c.serverKey.toString('base64')}`
}

/** Read the entries of a password file's text; throws a `PasswordFileError` naming `source:line`. */
export function parsePasswordFile(text: string, source = 'password file'): Map<string, PasswordEntry> {
  const entries = new Map<string, PasswordEntry>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line.length === 0 || line.startsWith('#')) continue
    const where = `${source}:${i + 1}`
    const fields = line.split(':')
    const username = fields[0]!
    if (fields.length < 2 || fields.length > 3 || username.length === 0) {
      throw new PasswordFileError(`${where}: expected user:hash`)
    }
    if (entries.has(username)) throw new PasswordFileError(`${where}: user ${JSON.stringify(username)} appears twice`)
    let parsed: ParsedHash
    try {
      parsed = parseHash(fields[1]!)
    } catch (error) {
      throw new PasswordFileError(`${where}: ${(error as Error).message}`)
    }
    const entry: PasswordEntry = { username, hash: fields[1]!, parsed }
    if (fields[2] !== undefined) {
      const m = SCRAM.exec(fields[2])
      if (m === null) throw new PasswordFileError(`${where}: malformed $scram-sha-256$ field`)
      entry.scram = {
        iterations: Number(m[1]),
        salt: Buffer.from(m[2]!, 'base64'),
        storedKey: Buffer.from(m[3]!, 'base64'),
        serverKey: Buffer.from(m[4]!, 'base64')
      }
    }
    entries.set(username, entry)
  }
  return entries
}

/**
 * The users of one password file, read at construction and again by `reload()`. A reload that
 * fails keeps the users read before (and throws): a typo never locks everyone out.
 */
export class PasswordFile implements Authenticator {
  readonly name = 'password-file'
  readonly path: string
  #entries: Map<string, PasswordEntry>
  #dummy: ParsedHash

  constructor(path: string) {
    this.path = path
    this.#entries = parsePasswordFile(readFileSync(path, 'utf8'), path)
    this.#dummy = this.#makeDummy()
  }

  /** Read the file again. Throws (keeping the previous users) when it cannot be read. */
  reload(): void {
    this.#entries = parsePasswordFile(readFileSync(this.path, 'utf8'), this.path)
    this.#dummy = this.#makeDummy()
  }

  #makeDummy(): ParsedHash {
    // The scheme and cost of the first user: an unknown user costs what a known one does.
    const first = this.#entries.values().next()
    return dummyHash(first.done === true ? undefined : first.value.parsed)
  }

  /** The user names, in file order. */
  get usernames(): string[] {
    return [...this.#entries.keys()]
  }

  /** Whether the file has `username`. */
  has(username: string): boolean {
    return this.#entries.has(username)
  }

  /** `Authenticator.hasUser`: the file's users are everyone's (any tenant). */
  hasUser(_tenant: string | undefined, username: string): boolean {
    return this.#entries.has(username)
  }

  /** The stored SCRAM-SHA-256 credentials of `username`, if the file has some (any tenant). */
  scram(_tenant: string | undefined, username: string): ScramCredentials | undefined {
    return this.#entries.get(username)?.scram
  }

  /**
   * `Authenticator`: a CONNECT with a user name and password this file knows is allowed or denied
   * (0x86); an unknown user, or no password, is left to the next authenticator ('ignore').
   */
  async authenticate(request: AuthRequest): Promise<AuthVerdict> {
    const { username, password } = request
    if (username === undefined || password === undefined) return { result: 'ignore' }
    const outcome = await this.verify(username, password.toString('utf8'))
    if (outcome === 'ok') return { result: 'allow', identity: { username } }
    if (outcome === 'bad') return { result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword }
    return { result: 'ignore' }
  }

  /**
   * Whether `password` is the password of `username`: 'ok', 'bad', or 'unknown' (no such user:
   * checked against a dummy hash first, so that it takes as long as 'bad').
   */
  async verify(username: string, password: string): Promise<'ok' | 'bad' | 'unknown'> {
    const entry = this.#entries.get(username)
    if (entry === undefined) {
      await verifyPassword(this.#dummy, password)
      return 'unknown'
    }
    return (await verifyPassword(entry.parsed, password)) ? 'ok' : 'bad'
  }
}
