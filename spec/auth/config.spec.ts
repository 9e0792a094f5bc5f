import { expect } from 'chai'
import { Ajv } from 'ajv'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { withAccessControl } from '../../lib/auth/access-backend.js'
import { accessControlFromConfig, authConfigSchema } from '../../lib/auth/config.js'
import type { AuthConfig } from '../../lib/auth/config.js'
import { hashPassword } from '../../lib/auth/password-hash.js'
import type { Credentials } from '../../lib/backend/backend.js'
import { FakeClient } from '../../lib/backend/conformance/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'

function credentials(username: string | undefined, password: string | undefined): Credentials {
  return {
    clientId: 'c1',
    username,
    password: password === undefined ? undefined : Buffer.from(password),
    connect: { type: 'connect', protocolLevel: 5, clientId: 'c1', clean: true, keepalive: 0 }
  }
}

describe('auth configuration section', function () {
  this.timeout(10000)
  const validate = new Ajv({ allErrors: true }).compile(authConfigSchema)
  let dir = ''
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'auth-config-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  const full: AuthConfig = {
    allow_anonymous: false,
    password_file: 'users',
    acl_file: ['acl'],
    acl: [{ filter: 'users/%u/#', access: 'readwrite' }],
    acl_default: 'deny',
    connection_rules: [{ action: 'deny', address: ['10.0.0.0/8'], client_id: 'x*' }],
    connection_default: 'allow',
    jwt: { secret_env: 'JWT_SECRET', acl_claim: 'acl', username_claim: 'sub' },
    brute_force: { free_attempts: 3, delay_ms: 100 },
    scram: true,
    order: ['jwt', 'password_file']
  }

  it('the schema accepts every key and refuses unknown keys and bad values', () => {
    expect(validate(full), JSON.stringify(validate.errors)).to.equal(true)
    expect(validate({ http: { url: 'http://127.0.0.1:1/auth', on_error: 'allow' }, redis: { url: 'redis://127.0.0.1:6379' }, brute_force: false })).to.equal(true)
    expect(validate({ passwd_file: 'x' })).to.equal(false)
    expect(validate({ acl: [{ filter: 'a', access: 'all' }] })).to.equal(false)
    expect(validate({ acl: [{ filter: 'a', access: 'read', extra: 1 }] })).to.equal(false)
    expect(validate({ jwt: { secret: 'short' } })).to.equal(false)
    expect(validate({ http: { url: 'ftp://x' } })).to.equal(false)
    expect(validate({ brute_force: true })).to.equal(false)
    expect(validate({ redis: { url: 'redis://127.0.0.1:6379', poll_ms: 0, wait_ms: 500 } })).to.equal(true)
    expect(validate({ redis: { url: 'redis://127.0.0.1:6379', wait_ms: 0 } })).to.equal(false)
  })

  it('builds access control with paths relative to the configuration folder', async () => {
    writeFileSync(join(dir, 'users'), `alice:${await hashPassword('alice-pw')}\n`)
    writeFileSync(join(dir, 'acl'), 'topic read news/#\n')
    const secret = 'a-long-enough-shared-secret'
    const access = accessControlFromConfig(full, { baseDir: dir, env: { JWT_SECRET: secret } })
    const b = withAccessControl(new MemoryBackend(), access)
    const alice = new FakeClient('c1')
    expect((await b.authenticate(alice, credentials('alice', 'alice-pw'))).result).to.equal('allow')
    expect(await b.authorizeSubscribe(alice, { topicFilter: 'news/a', qos: 0 })).to.equal(true)
    expect(await b.authorizeSubscribe(alice, { topicFilter: 'users/alice/a', qos: 0 })).to.equal(true)
    expect(await b.authorizeSubscribe(alice, { topicFilter: 'users/bob/a', qos: 0 })).to.equal(0x87)
    expect(await b.authenticate(new FakeClient('c1'), credentials(undefined, undefined))).to.deep.include({ result: 'deny', reasonCode: 0x87 })
    const token = await new SignJWT({ sub: 'dev', acl: [{ filter: 'dev/#', access: 'read' }] })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret))
    const device = new FakeClient('c1')
    expect((await b.authenticate(device, credentials('jwt', token))).result).to.equal('allow')
    expect(await b.authorizeSubscribe(device, { topicFilter: 'dev/x', qos: 0 })).to.equal(true)
    expect(await b.authorizeSubscribe(device, { topicFilter: 'users/dev/x', qos: 0 })).to.equal(true)
    expect(await b.authorizeSubscribe(device, { topicFilter: 'users/alice/x', qos: 0 })).to.equal(0x87)
    await b.close()
  })

  it('names the key of a file it cannot read or a missing secret', () => {
    expect(() => accessControlFromConfig({ password_file: 'missing' }, { baseDir: dir })).to.throw(Error, 'auth.password_file')
    expect(() => accessControlFromConfig({ jwt: { secret_env: 'NOPE' } }, { baseDir: dir, env: {} })).to.throw(Error, 'auth.jwt: environment variable NOPE')
    writeFileSync(join(dir, 'acl'), 'topic nonsense a/#/b\n')
    expect(() => accessControlFromConfig({ acl_file: 'acl' }, { baseDir: dir })).to.throw(Error, `${join(dir, 'acl')}:1`)
  })
})
