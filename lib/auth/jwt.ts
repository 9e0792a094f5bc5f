/**
 * JWT authentication (with `jose`): a signed token in the CONNECT's password field.
 *
 * - Keys: an HMAC secret (HS256/384/512), a PEM public key (RS*, PS*, ES*, EdDSA), or a JWKS file
 *   (keys picked by `kid`); files are read again by `reload()`.
 * - The signature, `exp` and `nbf` are checked (with `clockToleranceSec`), `iss` and `aud` when
 *   configured; `algorithms` restricts the accepted `alg` values (default: what the key allows).
 * - Claims map to the identity: `username_claim` (default `sub`) is the user name ACL rules see,
 *   `tenant_claim` the tenant, `acl_claim` a list of `{ filter, access }` rules of this token.
 * - The connection is closed when the token expires (MQTT 5: DISCONNECT 0xA0 Maximum connect time).
 * - A password that is not shaped like a JWT (three base64url parts) is left to the next
 *   authenticator; a JWT that fails any check is refused with 0x86 Bad user name or password.
 */
import { createPublicKey, createSecretKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createLocalJWKSet, jwtVerify } from 'jose'
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from 'jose'
import { ReasonCode } from '../packet/reason-codes.js'
import { checkAclRule } from './acl.js'
import type { AclRule } from './acl.js'
import type { Authenticator, AuthRequest, AuthVerdict, Identity } from './authenticator.js'

/** Options of a `JwtAuthenticator`: exactly one of `secret`, `publicKey`/`publicKeyFile`, `jwksFile`. */
export interface JwtOptions {
  /** HMAC secret (HS256/384/512). */
  secret?: string
  /** A PEM public key (RSA, EC, Ed25519). */
  publicKey?: string
  /** A file holding a PEM public key. */
  publicKeyFile?: string
  /** A JSON Web Key Set file (`{ "keys": [...] }`). */
  jwksFile?: string
  /** Accepted `alg` values (default: any the key fits). */
  algorithms?: string[]
  issuer?: string | string[]
  audience?: string | string[]
  /** Seconds of clock skew tolerated for `exp` / `nbf` (default 0). */
  clockToleranceSec?: number
  /** The claim holding the user name (default `sub`). */
  usernameClaim?: string
  /** The claim holding the tenant (default none). */
  tenantClaim?: string
  /** The claim holding ACL rules `[{ filter, access }]` (default none). */
  aclClaim?: string
  /** Whether a token without `exp` is refused (default false). */
  requireExpiry?: boolean
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

type Key = KeyObject | JWTVerifyGetKey

function loadKey(options: JwtOptions): Key {
  const given = [options.secret, options.publicKey, options.publicKeyFile, options.jwksFile].filter((x) => x !== undefined)
  if (given.length !== 1) throw new TypeError('JWT: give exactly one of secret, public key (or its file), JWKS file')
  if (options.secret !== undefined) {
    if (options.secret.length < 16) throw new TypeError('JWT: the secret must be at least 16 characters')
    return createSecretKey(Buffer.from(options.secret, 'utf8'))
  }
  if (options.publicKey !== undefined) return createPublicKey(options.publicKey)
  if (options.publicKeyFile !== undefined) return createPublicKey(readFileSync(options.publicKeyFile, 'utf8'))
  const jwks = JSON.parse(readFileSync(options.jwksFile!, 'utf8')) as JSONWebKeySet
  if (!Array.isArray(jwks.keys)) throw new TypeError(`JWT: ${options.jwksFile} is not a JWKS ({ "keys": [...] })`)
  return createLocalJWKSet(jwks)
}

function claim(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

const refused = (reasonString: string): AuthVerdict => ({ result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword, reasonString })

export class JwtAuthenticator implements Authenticator {
  readonly name = 'jwt'
  readonly #options: JwtOptions
  #key: Key

  constructor(options: JwtOptions) {
    this.#options = options
    this.#key = loadKey(options)
  }

  /** Read key files again; keeps the previous key (and throws) when they are bad. */
  reload(): void {
    this.#key = loadKey(this.#options)
  }

  async authenticate(request: AuthRequest): Promise<AuthVerdict> {
    const token = request.password?.toString('utf8')
    if (token === undefined || !JWT_SHAPE.test(token)) return { result: 'ignore' }
    const o = this.#options
    let payload: JWTPayload
    try {
      const verifyOptions = {
        ...(o.algorithms === undefined ? {} : { algorithms: o.algorithms }),
        ...(o.issuer === undefined ? {} : { issuer: o.issuer }),
        ...(o.audience === undefined ? {} : { audience: o.audience }),
        clockTolerance: o.clockToleranceSec ?? 0
      }
      const key = this.#key
      payload = (typeof key === 'function' ? await jwtVerify(token, key, verifyOptions) : await jwtVerify(token, key, verifyOptions)).payload
    } catch (error) {
      const code = (error as { code?: string }).code
      return refused(code === 'ERR_JWT_EXPIRED' ? 'token expired' : 'invalid token')
    }
    if (o.requireExpiry === true && payload.exp === undefined) return refused('token without expiry')
    const identity: Identity = {}
    const username = claim(payload, o.usernameClaim ?? 'sub')
    if (username !== undefined) {
      if (typeof username !== 'string' || username.length === 0) return refused('bad user name claim')
      identity.username = username
    }
    if (o.tenantClaim !== undefined) {
      const tenant = claim(payload, o.tenantClaim)
      if (tenant !== undefined) {
        if (typeof tenant !== 'string') return refused('bad tenant claim')
        identity.tenant = tenant
      }
    }
    if (o.aclClaim !== undefined) {
      const rules = claim(payload, o.aclClaim)
      if (rules !== undefined) {
        if (!Array.isArray(rules)) return refused('bad ACL claim')
        try {
          identity.acl = rules.map((r: unknown, i) => {
            const { filter, access } = (r ?? {}) as Partial<AclRule>
            const rule = { filter, access } as AclRule
            checkAclRule(rule, `ACL claim rule ${i + 1}`)
            return rule
          })
        } catch {
          return refused('bad ACL claim')
        }
      }
    }
    if (payload.exp !== undefined) identity.expiresAt = payload.exp * 1000
    return { result: 'allow', identity }
  }
}
