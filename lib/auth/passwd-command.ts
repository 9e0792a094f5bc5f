/**
 * `mqtt-broker passwd [--delete] [--scram] FILE USER`: add a user to a password file, change their
 * password, or delete them. The password comes from a prompt (twice, not echoed) when standard
 * input is a terminal, else from the first line of standard input — never from the command line.
 * The file is rewritten atomically (temporary file, then rename) with mode 0600; its other lines,
 * comments included, are kept as they are. A broker re-reads it on SIGHUP (`reload()`).
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import type { Readable, Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import { createScramCredentials } from './scram.js'
import { formatScram, isValidFileUsername, parsePasswordFile } from './password-file.js'
import { hashPassword } from './password-hash.js'
import { checkAclRule } from './acl.js'
import type { AclRule } from './acl.js'
import { RedisUserStore } from './redis-store.js'

/** Where `runPasswd` reads and writes (the process's streams in the command). */
export interface PasswdIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }
  stdout: Writable
  stderr: Writable
}

export const PASSWD_USAGE = `Usage: mqtt-broker passwd [options] FILE USER
       mqtt-broker passwd --redis URL [--tenant T] [--prefix P] [options] USER

Add USER to the password file FILE (created if missing) or change their password; with --redis,
in the users of Redis shared by every broker process (effective on all within a second).
The password is read from a prompt on a terminal, else from the first line of standard input.

Options:
  -D, --delete      delete USER instead
  --scram           also store SCRAM-SHA-256 credentials (MQTT 5 enhanced authentication)
  --redis URL       the Redis of the users (redis://host:port) instead of a file
  --tenant T        with --redis: the tenant of USER (default: the default tenant)
  --prefix P        with --redis: the key prefix (default mqtt-auth)
  --set-acl JSON    with --redis: replace USER's own ACL rules ([{"filter":"a/#","access":"read"}]),
                    leaving the password as it is
  --set-tenant-acl JSON
                    with --redis, without USER: replace the tenant's ACL rules
  -h, --help        show this help
`

/** Reads one line from a non-terminal stream (the rest is ignored). */
async function readLine(stream: Readable): Promise<string | undefined> {
  let text = ''
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8')
    const nl = text.indexOf('\n')
    if (nl >= 0) return text.slice(0, nl).replace(/\r$/, '')
  }
  return text.length > 0 ? text : undefined
}

/** Prompts on a terminal without echo; resolves at Enter, rejects on Ctrl-C / Ctrl-D. */
function prompt(io: PasswdIo, question: string): Promise<string> {
  const { stdin, stderr } = io
  stderr.write(question)
  return new Promise((resolve, reject) => {
    let typed = ''
    const done = (error?: Error): void => {
      stdin.off('data', onData)
      stdin.setRawMode?.(false)
      stdin.pause()
      stderr.write('\n')
      if (error === undefined) resolve(typed)
      else reject(error)
    }
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\u0003' || ch === '\u0004') return done(new Error('cancelled'))
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1)
        else typed += ch
      }
    }
    stdin.setRawMode?.(true)
    stdin.resume()
    stdin.on('data', onData)
  })
}

async function readPassword(io: PasswdIo): Promise<string> {
  if (io.stdin.isTTY === true) {
    const first = await prompt(io, 'Password: ')
    const again = await prompt(io, 'Reenter password: ')
    if (first !== again) throw new Error('passwords do not match')
    return first
  }
  const line = await readLine(io.stdin)
  if (line === undefined) throw new Error('no password on standard input')
  return line
}

/** The file's lines with `username`'s line replaced by `line` (appended if new, removed if undefined). */
function edit(text: string, username: string, line: string | undefined): { text: string; found: boolean } {
  const lines = text.length === 0 ? [] : text.replace(/\r?\n$/, '').split(/\r?\n/)
  const at = lines.findIndex((l) => l.trim().split(':')[0] === username && !l.trim().startsWith('#'))
  if (at >= 0) {
    if (line === undefined) lines.splice(at, 1)
    else lines[at] = line
  } else if (line !== undefined) lines.push(line)
  return { text: lines.length === 0 ? '' : lines.join('\n') + '\n', found: at >= 0 }
}

function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, text, { mode: 0o600 })
  chmodSync(temporary, 0o600)
  renameSync(temporary, path)
}

/**
 * The `passwd` subcommand. `argv` are the arguments after `passwd`. Resolves with the exit code
 * (0 done, 1 failed, 2 bad usage); writes errors to `io.stderr`, never a password anywhere.
 */
export async function runPasswd(argv: string[], io: PasswdIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        delete: { type: 'boolean', short: 'D' },
        scram: { type: 'boolean' },
        redis: { type: 'string' },
        tenant: { type: 'string' },
        prefix: { type: 'string' },
        'set-acl': { type: 'string' },
        'set-tenant-acl': { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n\n${PASSWD_USAGE}`)
    return 2
  }
  if (parsed.values.help === true) {
    io.stdout.write(PASSWD_USAGE)
    return 0
  }
  if (parsed.values.redis !== undefined) return await runRedis(parsed.values, parsed.positionals, io)
  if (parsed.positionals.length !== 2) {
    io.stderr.write(`expected FILE and USER (a password is never taken from the command line)\n\n${PASSWD_USAGE}`)
    return 2
  }
  const [file, username] = parsed.positionals as [string, string]
  if (!isValidFileUsername(username)) {
    io.stderr.write('a user name must not be empty nor hold ":" or control characters\n')
    return 2
  }
  try {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
    // Refuse to rewrite a file we cannot read: nothing is lost.
    parsePasswordFile(text, file)
    if (parsed.values.delete === true) {
      const result = edit(text, username, undefined)
      if (!result.found) {
        io.stderr.write(`user ${JSON.stringify(username)} is not in ${file}\n`)
        return 1
      }
      writeAtomically(file, result.text)
      io.stdout.write(`deleted user ${username}\n`)
      return 0
    }
    const password = await readPassword(io)
    if (password.length === 0) throw new Error('empty password')
    let line = `${username}:${await hashPassword(password)}`
    if (parsed.values.scram === true) line += `:${formatScram(createScramCredentials(password))}`
    const result = edit(text, username, line)
    writeAtomically(file, result.text)
    io.stdout.write(`${result.found ? 'changed password of' : 'added'} user ${username}\n`)
    return 0
  } catch (error) {
    io.stderr.write(`passwd: ${(error as Error).message}\n`)
    return 1
  }
}

/** `passwd --redis URL [--tenant T] USER`: the same, on the users in Redis. */
async function runRedis(
  values: {
    redis?: string
    tenant?: string
    prefix?: string
    delete?: boolean
    scram?: boolean
    'set-acl'?: string
    'set-tenant-acl'?: string
  },
  positionals: string[],
  io: PasswdIo
): Promise<number> {
  const tenantRules = values['set-tenant-acl']
  if (tenantRules !== undefined) {
    if (positionals.length !== 0) {
      io.stderr.write(`--set-tenant-acl takes no USER\n\n${PASSWD_USAGE}`)
      return 2
    }
    return await withStore(values, io, async (store, where) => {
      await store.setTenantAcl(values.tenant, parseRules(tenantRules))
      io.stdout.write(`set the ACL rules${where || ' of the default tenant'}\n`)
      return 0
    })
  }
  if (positionals.length !== 1) {
    io.stderr.write(`expected USER (a password is never taken from the command line)\n\n${PASSWD_USAGE}`)
    return 2
  }
  const username = positionals[0]!
  if (!isValidFileUsername(username)) {
    io.stderr.write('a user name must not be empty nor hold ":" or control characters\n')
    return 2
  }
  return await withStore(values, io, async (store, where) => {
    const userRules = values['set-acl']
    if (userRules !== undefined) {
      await store.setUserAcl(values.tenant, username, parseRules(userRules))
      io.stdout.write(`set the ACL rules of user ${username}${where}\n`)
      return 0
    }
    if (values.delete === true) {
      if (!(await store.deleteUser(values.tenant, username))) {
        io.stderr.write(`user ${JSON.stringify(username)}${where} is not in Redis\n`)
        return 1
      }
      io.stdout.write(`deleted user ${username}${where}\n`)
      return 0
    }
    const existed = (await store.usernames(values.tenant)).includes(username)
    const password = await readPassword(io)
    if (password.length === 0) throw new Error('empty password')
    await store.setUser(values.tenant, username, password, { scram: values.scram === true })
    io.stdout.write(`${existed ? 'changed password of' : 'added'} user ${username}${where}\n`)
    return 0
  })
}

/** ACL rules from a JSON argument; throws with the reason when they are not valid. */
function parseRules(json: string): AclRule[] {
  let rules: unknown
  try {
    rules = JSON.parse(json)
  } catch {
    throw new Error('the ACL rules are not valid JSON')
  }
  if (!Array.isArray(rules)) throw new Error('the ACL rules must be a JSON list of {"filter", "access"}')
  rules.forEach((rule, i) => checkAclRule(rule as AclRule, `rule ${i + 1}`))
  return rules as AclRule[]
}

/** Runs `work` with a connected store; errors become exit code 1 with a message. */
async function withStore(
  values: { redis?: string; prefix?: string; tenant?: string },
  io: PasswdIo,
  work: (store: RedisUserStore, where: string) => Promise<number>
): Promise<number> {
  const store = new RedisUserStore({ url: values.redis!, pollMs: 0, ...(values.prefix === undefined ? {} : { prefix: values.prefix }) })
  const where = values.tenant === undefined ? '' : ` of tenant ${values.tenant}`
  try {
    await store.ready()
    return await work(store, where)
  } catch (error) {
    io.stderr.write(`passwd: ${(error as Error).message}\n`)
    return 1
  } finally {
    await store.close()
  }
}
