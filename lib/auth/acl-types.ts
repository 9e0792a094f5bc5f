// The shapes of ACL rules, shared by the rule engine (acl.ts) and its per-template decisions
// (acl-template.ts) without either importing the other.

/** What a rule grants. `deny` takes both read and write away. */
export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny'

/** One ACL rule. */
export interface AclRule {
  /** A topic filter, possibly with `%u` (user name), `%c` (client id), `%t` (tenant). */
  filter: string
  access: AclAccess
  /** Applies only to this user name. */
  user?: string
  /** Applies only to this client id. */
  client?: string
  /** Applies only to this tenant. */
  tenant?: string
}

/** Who a connection is, for ACL selectors and substitutions. */
export interface AclSubject {
  username: string | undefined
  clientId: string
  tenant: string | undefined
}
