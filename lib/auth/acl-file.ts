/**
 * ACL files in Mosquitto's format, so that an existing `acl_file` works as-is:
 *
 * ```
 * # rules before any "user" line apply to everyone
 * topic read public/#
 * user alice                      # the "topic" lines below apply to alice only
 * topic readwrite alice/#
 * topic deny alice/secret/#
 * pattern write devices/%c/up     # "pattern" lines apply to everyone, wherever they are
 * ```
 *
 * `topic [read|write|readwrite|deny] FILTER` (no access: readwrite), `pattern ...` likewise with
 * `%u %c` (and our `%t`), `user NAME` starts a user's section. Extensions: `client ID` and
 * `tenant ID` start a section for a client id or a tenant. Semantics: see `acl.ts`.
 */
import { readFileSync } from 'node:fs'
import { checkAclRule } from './acl.js'
import type { AclAccess, AclRule } from './acl.js'

/** A line of an ACL file that could not be read: `file:line: why`. */
export class AclFileError extends Error {
  override readonly name = 'AclFileError'
}

const ACCESS = new Set(['read', 'write', 'readwrite', 'deny'])

/** The rules of an ACL file's text; throws an `AclFileError` naming `source:line`. */
export function parseAclFile(text: string, source = 'ACL file'): AclRule[] {
  const rules: AclRule[] = []
  let section: Pick<AclRule, 'user' | 'client' | 'tenant'> = {}
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\s+#.*$/, '').trim()
    if (line.length === 0 || line.startsWith('#')) continue
    const where = `${source}:${i + 1}`
    const [keyword, ...rest] = line.split(/\s+/)
    if (keyword === 'user' || keyword === 'client' || keyword === 'tenant') {
      const name = line.slice(keyword.length).trim()
      if (name.length === 0) throw new AclFileError(`${where}: ${keyword} needs a name`)
      section = { [keyword]: name }
      continue
    }
    if (keyword !== 'topic' && keyword !== 'pattern') {
      throw new AclFileError(`${where}: expected topic, pattern, user, client or tenant`)
    }
    let access: AclAccess = 'readwrite'
    if (rest.length > 1 && ACCESS.has(rest[0]!)) access = rest.shift() as AclAccess
    // Mosquitto allows spaces in topics: the filter is the rest of the line.
    const filter = rest.join(' ')
    const rule: AclRule = keyword === 'pattern' ? { filter, access } : { filter, access, ...section }
    try {
      checkAclRule(rule, where)
    } catch (error) {
      throw new AclFileError((error as Error).message)
    }
    rules.push(rule)
  }
  return rules
}

/** Read an ACL file (see `parseAclFile`). */
export function readAclFile(path: string): AclRule[] {
  return parseAclFile(readFileSync(path, 'utf8'), path)
}
