import { expect } from 'chai'
import fc from 'fast-check'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { withAccessControl } from '../../lib/auth/access-backend.js'
import { AccessControl } from '../../lib/auth/access-control.js'
import { ClientAcl } from '../../lib/auth/acl.js'
import type { AclRule, AclSubject } from '../../lib/auth/acl.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { FakeClient, message, sub } from '../../lib/backend/conformance/index.js'
import { topicMatches } from '../../lib/packet/topic.js'

/** The ACL semantics of docs/security.md, written plainly: the reference the fast path must equal. */
function reference(rules: readonly AclRule[], s: AclSubject, defaultAllow: boolean, topic: string, want: 'read' | 'write'): boolean {
  let allowed = false
  for (const rule of rules) {
    if (rule.user !== undefined && rule.user !== s.username) continue
    if (rule.client !== undefined && rule.client !== s.clientId) continue
    if (rule.tenant !== undefined && rule.tenant !== s.tenant) continue
    let missing = false
    let unsafe = false
    const filter = rule.filter.replace(/%([uct])/g, (_m, k: string) => {
      const v = k === 'u' ? s.username : k === 'c' ? s.clientId : s.tenant
      if (v === undefined || v === '') missing = true
      else if (/[+#/]/.test(v)) unsafe = true
      return v ?? ''
    })
    if (missing) continue
    if (unsafe) {
      if (rule.access === 'deny') return false
      continue
    }
    if (!topicMatches(filter, topic)) continue
    if (rule.access === 'deny') return false
    if (rule.access === 'readwrite' || rule.access === want) allowed = true
  }
  return allowed || defaultAllow
}

const level = fc.constantFrom('a', 'b', '$x', 'dev', '%c', '%u', '%t', 'x%cy')
const filterLevel = fc.oneof(level, fc.constant('+'))
const rule: fc.Arbitrary<AclRule> = fc
  .record({
    levels: fc.array(filterLevel, { minLength: 1, maxLength: 3 }),
    hash: fc.boolean(),
    access: fc.constantFrom('read', 'write', 'readwrite', 'deny'),
    user: fc.option(fc.constantFrom('u1', 'u2'), { nil: undefined })
  })
  .map(({ levels, hash, access, user }) => {
    const r: AclRule = { filter: [...levels, ...(hash ? ['#'] : [])].join('/'), access }
    if (user !== undefined) r.user = user
    return r
  })
const subject: fc.Arbitrary<AclSubject> = fc.record({
  username: fc.constantFrom(undefined, 'u1', 'u2', 'a', '#'),
  clientId: fc.constantFrom('a', 'b', 'dev', '$x', 'c+', 'x/y'),
  tenant: fc.constantFrom(undefined, 'a', 'b')
})
const topic = fc.array(fc.constantFrom('a', 'b', 'dev', '$x', 'u1', 'u2', 'xay', 'xby', '$SYS'), { minLength: 1, maxLength: 4 }).map((l) => l.join('/'))

describe('acl – templates shared across connections', () => {
  it('decide exactly as the rules say, for connections sharing them, whatever order topics come in', () => {
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 6 }), fc.array(subject, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.array(topic, { minLength: 1, maxLength: 12 }), (rules, subjects, defaultAllow, topics) => {
        const control = new AccessControl({ acl: rules, aclDefault: defaultAllow ? 'allow' : 'deny', bruteForce: false })
        const acls = subjects.map((s) => {
          const client = new FakeClient(s.clientId)
          Object.assign(client, { username: s.username, tenant: s.tenant })
          return control.aclOf(client)
        })
        // Twice over: the second round answers from the caches (last topic, template, connection).
        for (let round = 0; round < 2; round++) {
          for (const t of topics) {
            subjects.forEach((s, i) => {
              expect(acls[i]!.mayRead(t), `read ${t} as ${JSON.stringify(s)}`).to.equal(reference(rules, s, defaultAllow, t, 'read'))
              expect(acls[i]!.mayWrite(t), `write ${t} as ${JSON.stringify(s)}`).to.equal(reference(rules, s, defaultAllow, t, 'write'))
            })
          }
        }
      }),
      { numRuns: 400 }
    )
  })

  it('connections whose rules differ only by %c share one template; the ACLs stay their own', () => {
    const acl: AclRule[] = [{ filter: 'open/#', access: 'read' }, { filter: 'dev/%c/#', access: 'readwrite' }]
    const control = new AccessControl({ acl, bruteForce: false })
    const [one, two] = [control.aclOf(new FakeClient('one')), control.aclOf(new FakeClient('two'))]
    expect(one).to.not.equal(two)
    expect(one.templateKey).to.equal(two.templateKey)
    expect([one.mayRead('open/x'), two.mayRead('open/x'), one.mayRead('dev/one/x'), two.mayRead('dev/one/x')]).to.deep.equal([true, true, true, false])
    // A deny made unsafe by its value denies everything and decides alone.
    const unsafe = new ClientAcl([{ filter: 'dev/%c/#', access: 'deny' }, { filter: '#', access: 'read' }], { username: undefined, clientId: 'a+b', tenant: undefined }, false)
    expect(unsafe.templateKey).to.equal(undefined)
    expect(unsafe.mayRead('open/x')).to.equal(false)
  })
})

describe('acl – live changes reach cached decisions', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'acl-live-'))
  })
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  async function reader(b: ReturnType<typeof withAccessControl>, clientId: string): Promise<FakeClient> {
    const client = new FakeClient(clientId, 5)
    const connect = { type: 'connect', protocolLevel: 5, clientId, clean: true, keepalive: 0 } as const
    expect((await b.authenticate(client, { clientId, username: undefined, password: undefined, connect })).result).to.equal('allow')
    await b.setup(client, true, 0)
    await b.queueOffline(client)
    expect(await b.authorizeSubscribe(client, sub('#'))).to.equal(true)
    await b.subscribe(client, [sub('#')])
    return client
  }

  it('a topic a # subscriber was just reading stops at once after a reload denies it; allowed again after another', async () => {
    const file = join(dir, 'acl')
    writeFileSync(file, 'topic read live/#\npattern readwrite dev/%c/#\n')
    const b = withAccessControl(new MemoryBackend(), { aclFiles: [file], bruteForce: false })
    try {
      const readers = [await reader(b, 'r1'), await reader(b, 'r2')]
      const payloads = (c: FakeClient): string[] => c.payloads()
      // Warm every cache: the same topic, again and again (each message its own topic string).
      for (let i = 0; i < 3; i++) await b.publish(undefined, message(`live/${'t'}`, `before${i}`))
      await b.publish(undefined, message('dev/r1/x', 'own'))
      writeFileSync(file, 'topic read live/#\ntopic deny live/t\npattern readwrite dev/%c/#\n')
      await b.access.reload()
      await b.publish(undefined, message('live/t', 'after'))
      await b.publish(undefined, message('live/u', 'other'))
      expect(payloads(readers[0]!)).to.deep.equal(['before0', 'before1', 'before2', 'own', 'other'])
      expect(payloads(readers[1]!)).to.deep.equal(['before0', 'before1', 'before2', 'other'])
      writeFileSync(file, 'topic read live/#\n')
      await b.access.reload()
      await b.publish(undefined, message('live/t', 'again'))
      await b.publish(undefined, message('dev/r1/x', 'not own any more'))
      expect(payloads(readers[1]!).slice(-1)).to.deep.equal(['again'])
      expect(payloads(readers[0]!).slice(-1)).to.deep.equal(['again'])
      expect(b.access.stats.deliveriesDenied).to.equal(2 + 1 + 2)
    } finally {
      await b.close()
    }
  })

  it('a rule change announced by a store (changed()) reaches the same topic on a live connection', async () => {
    const acl: AclRule[] = [{ filter: 'live/#', access: 'read' }]
    const b = withAccessControl(new MemoryBackend(), { acl, bruteForce: false })
    try {
      const r = await reader(b, 'r')
      await b.publish(undefined, message('live/t', 'before'))
      // The static list is the control's own: a store's change is simulated by mutating it and announcing.
      acl[0] = { filter: 'other/#', access: 'read' }
      b.access.changed()
      await b.publish(undefined, message('live/t', 'after'))
      expect(r.payloads()).to.deep.equal(['before'])
    } finally {
      await b.close()
    }
  })
})
