/**
 * The pieces access control is assembled from: authenticators (who is connecting: password file,
 * user store, JWT, HTTP hook) and authorizers (an outside opinion on PUBLISH and SUBSCRIBE: the
 * HTTP hook). `AccessControl` asks them in the order configured.
 */
import type { ProtocolLevel } from '../packet/types.js'
import type { ConnectionInfo } from '../transport/connection.js'
import type { Awaitable } from '../util/awaitable.js'
import type { AclRule } from './acl.js'
import type { ScramCredentials } from './scram.js'

/** What an authenticator is asked about one CONNECT. */
export interface AuthRequest {
  clientId: string
  /** The CONNECT's user name. */
  username: string | undefined
  /** The CONNECT's password (never logged). */
  password: Buffer | undefined
  /** The connection's tenant (from the broker's tenant resolver). */
  tenant: string | undefined
  protocolLevel: ProtocolLevel
  /** Remote address, listener, client certificate (when the engine provides them). */
  connection: ConnectionInfo | undefined
}

/** Who a connection turned out to be. */
export interface Identity {
  /** The user name ACL rules see (`user` selectors, `%u`): a JWT claim, or the CONNECT's. */
  username?: string
  /** Further ACL rules of this identity (JWT claims, a user's rules in a store). */
  acl?: AclRule[]
  /** When the credentials stop being valid (ms since the epoch): the connection is closed then. */
  expiresAt?: number
  /**
   * The tenant the credentials are for (a JWT claim). A connection whose tenant (from the
   * broker's resolver) differs is refused; one without a tenant keeps the default tenant.
   */
  tenant?: string
}

/** An authenticator's answer. */
export type AuthVerdict =
  | { result: 'allow'; identity?: Identity }
  /** MQTT 5 reason code (0x86 bad user name or password, 0x87 not authorized, 0x8C bad method...). */
  | { result: 'deny'; reasonCode: number; reasonString?: string }
  /** Not mine (unknown user, no token): the next authenticator decides. */
  | { result: 'ignore' }

/** One way to authenticate a CONNECT. */
export interface Authenticator {
  /** For logs, stats and events ("password-file", "jwt", "http", "redis"). */
  readonly name: string
  authenticate(request: AuthRequest): Awaitable<AuthVerdict>
  /**
   * Optional: the current ACL rules of a user this authenticator knows (live: asked again after
   * every change), for stores that keep rules per user.
   */
  userAcl?(tenant: string | undefined, username: string): readonly AclRule[] | undefined
  /**
   * Optional: whether the user still exists (true/false), or undefined when this authenticator
   * cannot tell. After a change, connections it let in whose user is gone are closed.
   */
  hasUser?(tenant: string | undefined, username: string): boolean | undefined
  /** Optional: the SCRAM-SHA-256 credentials of a user (MQTT 5 enhanced authentication). */
  scram?(tenant: string | undefined, username: string): Awaitable<ScramCredentials | undefined>
  /** Optional: read files again (SIGHUP). Throws, keeping the previous state, when they are bad. */
  reload?(): Awaitable<void>
  /** Optional: calls `listener` after every change that happened outside (another process). */
  onChange?(listener: () => void): void
  close?(): Awaitable<void>
}

/** What an authorizer is asked. */
export interface AuthorizeRequest {
  action: 'publish' | 'subscribe'
  clientId: string
  username: string | undefined
  tenant: string | undefined
  /** The topic (publish) or topic filter (subscribe). */
  topic: string
  qos: number
  retain?: boolean
}

/** An outside opinion on a PUBLISH or SUBSCRIBE; 'ignore' leaves the decision to the ACL. */
export interface Authorizer {
  readonly name: string
  authorize(request: AuthorizeRequest): Awaitable<'allow' | 'deny' | 'ignore'>
  close?(): Awaitable<void>
}
