/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) for MQTT 5 enhanced authentication (MQTT 5.0 4.12), with
 * credentials stored salted and iterated (PBKDF2-HMAC-SHA-256): the server never holds passwords.
 *
 * The exchange on the wire (Authentication Method `SCRAM-SHA-256`):
 *
 * ```
 * CONNECT  data = client-first   "n,,n=user,r=<client nonce>"
 * AUTH 18  data = server-first   "r=<client nonce><server nonce>,s=<salt>,i=<iterations>"
 * AUTH 18  data = client-final   "c=biws,r=<nonce>,p=<client proof>"
 * CONNACK  data = server-final   "v=<server signature>"        (or CONNACK 0x86 on a bad proof)
 * ```
 *
 * `ScramAuthenticator.authenticate` is a `Backend.authenticate` function, usable as the
 * `authenticate` option of `MemoryBackend` or from any backend; it works for re-authentication
 * (AUTH 0x19) too. `ScramClient` is the client side, for tests and Node clients.
 *
 * Channel binding is not supported (gs2 header `n,,` or `y,,`); SASLprep is approximated by NFKC
 * normalization of the password.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import type { AuthenticateFunction, AuthenticationResult, ClientHandle, Credentials } from '../backend/backend.js'
import { ReasonCode } from '../packet/reason-codes.js'
import { isPromise } from '../util/awaitable.js'
import type { Awaitable } from '../util/awaitable.js'

/** The MQTT Authentication Method name. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256'

/** The smallest iteration count accepted for stored credentials (RFC 7677 section 4). */
export const MIN_SCRAM_ITERATIONS = 4096

/** What the server stores per user: never the password. */
export interface ScramCredentials {
  salt: Buffer
  iterations: number
  /** H(ClientKey). */
  storedKey: Buffer
  /** HMAC(SaltedPassword, "Server Key"). */
  serverKey: Buffer
}

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest()
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!
  return out
}

function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
}

/**
 * Derive the stored credentials of a password: a random 16-byte salt (unless given) and
 * `iterations` rounds of PBKDF2 (default and minimum 4096).
 */
export function createScramCredentials(
  password: string,
  options: { iterations?: number; salt?: Buffer } = {}
): ScramCredentials {
  const iterations = options.iterations ?? MIN_SCRAM_ITERATIONS
  if (!Number.isInteger(iterations) || iterations < MIN_SCRAM_ITERATIONS) {
    throw new RangeError(`iterations must be an integer of at least ${MIN_SCRAM_ITERATIONS}`)
  }
  const salt = options.salt ?? randomBytes(16)
  const salted = saltedPassword(password, salt, iterations)
  return {
    salt,
    iterations,
    storedKey: sha256(hmac(salted, 'Client Key')),
    serverKey: hmac(salted, 'Server Key')
  }
}

/** Parse `k=v,k=v` attributes (values may contain '='). */
function attributes(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of text.split(',')) {
    const at = part.indexOf('=')
    if (at === 1) out.set(part[0]!, part.slice(2))
  }
  return out
}

/** RFC 5802 saslname decoding (`=2C` → `,`, `=3D` → `=`); undefined when malformed. */
function decodeName(name: string): string | undefined {
  if (/=(?!2C|3D)/.test(name)) return undefined
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=')
}

function encodeName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C')
}

/** Options of a `ScramAuthenticator`. */
export interface ScramAuthenticatorOptions {
  /** The stored credentials of a user name, or undefined when there is no such user. */
  lookup(username: string): Awaitable<ScramCredentials | undefined>
  /**
   * How CONNECTs without `SCRAM-SHA-256` as Authentication Method are decided (3.1.1 clients,
   * plain user name and password). Default: refused with 0x8C Bad authentication method (0x86 at 3.1.1).
   */
  fallback?: AuthenticateFunction
  /** Bytes of server nonce (default 18). */
  nonceBytes?: number
}

/** The state of one exchange, between server-first and client-final. */
interface Pending {
  username: string
  nonce: string
  clientFirstBare: string
  serverFirst: string
  gs2Header: string
  credentials: ScramCredentials | undefined
}

const BAD_METHOD: AuthenticationResult = {
  result: 'deny',
  reasonCode: ReasonCode.BadAuthenticationMethod,
  reasonString: 'authentication method not supported'
}

function denied(reasonString: string, reasonCode: number = ReasonCode.NotAuthorized): AuthenticationResult {
  return { result: 'deny', reasonCode, reasonString }
}

/**
 * The server side of SCRAM-SHA-256 as a backend-agnostic `authenticate` function. Keeps the state
 * of each running exchange per `ClientHandle` (weakly: nothing to clean up when a client leaves).
 */
export class ScramAuthenticator {
  readonly method = SCRAM_SHA_256
  readonly #options: ScramAuthenticatorOptions
  readonly #pending = new WeakMap<ClientHandle, Pending>()

  /**
   * A `Backend.authenticate` function (bound: pass it around as a value). It carries
   * `authenticationMethods`: `SCRAM-SHA-256` and those of the fallback, so a backend given it as its
   * `authenticate` option supports these methods [MQTT-4.12.0-1].
   */
  readonly authenticate: AuthenticateFunction

  constructor(options: ScramAuthenticatorOptions) {
    this.#options = options
    const methods: readonly string[] = [SCRAM_SHA_256, ...(options.fallback?.authenticationMethods ?? [])]
    this.authenticate = Object.assign(
      (client: ClientHandle, credentials: Credentials): Awaitable<AuthenticationResult> => this.#authenticate(client, credentials),
      { authenticationMethods: methods }
    )
  }

  #authenticate(client: ClientHandle, credentials: Credentials): Awaitable<AuthenticationResult> {
    if (credentials.authenticationMethod !== SCRAM_SHA_256) {
      const fallback = this.#options.fallback
      return fallback === undefined ? BAD_METHOD : fallback(client, credentials)
    }
    const data = credentials.authenticationData?.toString('utf8') ?? ''
    const pending = this.#pending.get(client)
    if (pending === undefined || data.startsWith('n,') || data.startsWith('y,')) {
      return this.#first(client, credentials, data)
    }
    this.#pending.delete(client)
    return this.#final(pending, data)
  }

  /** client-first → server-first (AUTH 0x18). */
  #first(client: ClientHandle, credentials: Credentials, data: string): Awaitable<AuthenticationResult> {
    // gs2-header: no channel binding ('n') or client supports it but thinks we do not ('y'); no authzid.
    const match = /^([ny]),,(n=[^,]*,r=[^,]+(?:,.*)?)$/.exec(data)
    if (match === null) return denied('malformed client-first message', ReasonCode.BadAuthenticationMethod)
    const clientFirstBare = match[2]!
    const attrs = attributes(clientFirstBare)
    const username = decodeName(attrs.get('n') ?? '')
    const clientNonce = attrs.get('r') ?? ''
    if (username === undefined || username.length === 0 || clientNonce.length === 0) {
      return denied('malformed client-first message', ReasonCode.BadAuthenticationMethod)
    }
    if (credentials.username !== undefined && credentials.username !== username) {
      return denied('user name differs from the CONNECT', ReasonCode.BadUserNameOrPassword)
    }
    const found = this.#options.lookup(username)
    const next = (stored: ScramCredentials | undefined): AuthenticationResult => {
      // An unknown user gets a plausible challenge and fails at the proof: no user enumeration.
      const salt = stored?.salt ?? randomBytes(16)
      const iterations = stored?.iterations ?? MIN_SCRAM_ITERATIONS
      const nonce = clientNonce + randomBytes(this.#options.nonceBytes ?? 18).toString('base64')
      const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`
      this.#pending.set(client, {
        username,
        nonce,
        clientFirstBare,
        serverFirst,
        gs2Header: `${match[1]!},,`,
        credentials: stored
      })
      return { result: 'continue', properties: { authenticationData: Buffer.from(serverFirst) } }
    }
    return isPromise(found) ? found.then(next) : next(found)
  }

  /** client-final → allow with server-final, or deny. */
  #final(pending: Pending, data: string): AuthenticationResult {
    const at = data.lastIndexOf(',p=')
    if (at < 0) return denied('malformed client-final message', ReasonCode.BadAuthenticationMethod)
    const withoutProof = data.slice(0, at)
    const attrs = attributes(withoutProof)
    if (attrs.get('c') !== Buffer.from(pending.gs2Header).toString('base64') || attrs.get('r') !== pending.nonce) {
      return denied('channel binding or nonce mismatch', ReasonCode.BadAuthenticationMethod)
    }
    const stored = pending.credentials
    const proof = Buffer.from(data.slice(at + 3), 'base64')
    if (stored === undefined || proof.length !== 32) return denied('bad user name or password', ReasonCode.BadUserNameOrPassword)
    const authMessage = `${pending.clientFirstBare},${pending.serverFirst},${withoutProof}`
    const clientKey = xor(proof, hmac(stored.storedKey, authMessage))
    if (!timingSafeEqual(sha256(clientKey), stored.storedKey)) {
      return denied('bad user name or password', ReasonCode.BadUserNameOrPassword)
    }
    const serverSignature = hmac(stored.serverKey, authMessage).toString('base64')
    return { result: 'allow', properties: { authenticationData: Buffer.from(`v=${serverSignature}`) } }
  }
}

/**
 * The client side of one SCRAM-SHA-256 exchange: `first()` for the CONNECT (or AUTH 0x19),
 * `final(serverFirst)` for the AUTH answering the server's challenge, `verify(serverFinal)` for the
 * CONNACK (or final AUTH) data, which proves the server knew the credentials too.
 */
export class ScramClient {
  readonly #username: string
  readonly #password: string
  readonly #clientNonce: string
  #authMessage = ''
  #saltedPassword: Buffer | undefined = undefined

  constructor(username: string, password: string, nonce: string = randomBytes(18).toString('base64')) {
    this.#username = username
    this.#password = password
    this.#clientNonce = nonce
  }

  #bare(): string {
    return `n=${encodeName(this.#username)},r=${this.#clientNonce}`
  }

  /** The client-first message. */
  first(): Buffer {
    return Buffer.from(`n,,${this.#bare()}`)
  }

  /** The client-final message for the server-first message; throws on a malformed challenge. */
  final(serverFirst: Buffer | string): Buffer {
    const text = serverFirst.toString()
    const attrs = attributes(text)
    const nonce = attrs.get('r') ?? ''
    const salt = Buffer.from(attrs.get('s') ?? '', 'base64')
    const iterations = Number(attrs.get('i'))
    if (!nonce.startsWith(this.#clientNonce) || salt.length === 0 || !Number.isInteger(iterations) || iterations < 1) {
      throw new Error('SCRAM: malformed server-first message')
    }
    const salted = (this.#saltedPassword = saltedPassword(this.#password, salt, iterations))
    const withoutProof = `c=biws,r=${nonce}`
    this.#authMessage = `${this.#bare()},${text},${withoutProof}`
    const clientKey = hmac(salted, 'Client Key')
    const proof = xor(clientKey, hmac(sha256(clientKey), this.#authMessage))
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`)
  }

  /** Whether the server-final message proves the server's knowledge of the credentials. */
  verify(serverFinal: Buffer | string): boolean {
    if (this.#saltedPassword === undefined) return false
    const expected = `v=${hmac(hmac(this.#saltedPassword, 'Server Key'), this.#authMessage).toString('base64')}`
    return serverFinal.toString() === expected
  }
}
