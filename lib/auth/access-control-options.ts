// The options of `AccessControl` and two small helpers of its CONNECT decision (access-control.ts).
import type { AuthenticationResult } from '../backend/backend.js'
import type { Logger } from '../broker/logger.js'
import type { AclRule } from './acl-types.js'
import type { Authenticator, Authorizer } from './authenticator.js'
import type { BruteForceOptions } from './brute-force.js'
import type { ConnectionRule } from './connection-rules.js'

/** Options of `AccessControl` (all optional: with none, everyone may connect and touch anything). */
export interface AccessControlOptions {
  /** Asked in order; the first to allow or deny decides. */
  authenticators?: Authenticator[]
  /** Whether a CONNECT that no authenticator decided and that has no user name is allowed (default: true only without authenticators). */
  allowAnonymous?: boolean
  /** The connection rule ledger (first match wins). */
  connectionRules?: ConnectionRule[]
  /** When no connection rule matches (default 'allow'). */
  connectionDefault?: 'allow' | 'deny'
  /** ACL rules (see acl.ts). */
  acl?: AclRule[]
  /** ACL files in Mosquitto's format, read now and again by `reload()`. */
  aclFiles?: string[]
  /** When no ACL rule grants an access (default: 'deny' once any rule applies to the connection, else 'allow'). */
  aclDefault?: 'allow' | 'deny'
  /** Asked about each PUBLISH and SUBSCRIBE the ACL allows, in order (e.g. the HTTP hook). */
  authorizers?: Authorizer[]
  /** Slow down repeated failures from one address (default on, default settings); false: off. */
  bruteForce?: BruteForceOptions | false
  /** MQTT 5 SCRAM-SHA-256 from the authenticators' stores (default true). */
  scram?: boolean
  /** Where refusals and reloads are logged (never a password or token). */
  logger?: Logger
}

export function deny(reasonCode: number, reasonString?: string): AuthenticationResult {
  return reasonString === undefined ? { result: 'deny', reasonCode } : { result: 'deny', reasonCode, reasonString }
}

/** The user name of a SCRAM client-first message, if it is one. */
export function scramUser(data: Buffer | undefined): string | undefined {
  const m = /^[ny],,n=([^,]*),/.exec(data?.toString('utf8') ?? '')
  return m === null ? undefined : m[1]!.replace(/=2C/g, ',').replace(/=3D/g, '=')
}
