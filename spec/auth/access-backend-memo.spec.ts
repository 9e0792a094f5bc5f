/**
 * The access-control decorator remembers, per connection, the last topic it allowed to read and to
 * publish on (one comparison on the hot path). Those memos must never outlive a change of rules:
 * the same topic — the very same string object, as a publisher's decoder hands out for a repeated
 * topic — is decided again after a reload.
 */
import { expect } from 'chai'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { withAccessControl } from '../../lib/auth/access-backend.js'
import { AccessControl } from '../../lib/auth/access-control.js'
import { ClientAcl } from '../../lib/auth/acl.js'
import type { AccessControlBackend } from '../../lib/auth/access-backend.js'
import { FakeClient } from '../../lib/backend/conformance/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { Message } from '../../lib/session/session.js'

async function connect(b: AccessControlBackend, clientId: string): Promise<FakeClient> {
  const client = new FakeClient(clientId, 5)
  const connect = { type: 'connect', protocolLevel: 5, clientId, clean: true, keepalive: 0 } as const
  const verdict = await b.authenticate(client, { clientId, username: undefined, password: undefined, connect })
  expect(verdict.result).to.equal('allow')
  await b.setup(client, true, 0)
  await b.queueOffline(client)
  return client
}

const message = (topic: string, payload: string): Message => ({ topic, payload: Buffer.from(payload), qos: 0, retain: false })

/** A string equal to `s` but a distinct object (as two publishers' decoders make). */
const copyOf = (s: string): string => Buffer.from(s).toString('utf8')

describe('access control – the last topic remembered per connection', () => {
  let dir: string
  let file: string
  let backend: AccessControlBackend | undefined

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'acl-memo-'))
    file = join(dir, 'acl')
    await writeFile(file, 'topic readwrite live/#\n')
    backend = withAccessControl(new MemoryBackend(), { aclFiles: [file], bruteForce: false })
  })

  afterEach(async () => {
    await backend?.close()
    backend = undefined
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses a publish on the very topic it allowed before a reload took the write access away', async () => {
    const b = backend!
    const writer = await connect(b, 'writer')
    const topic = 'live/1'
    expect(await b.authorizePublish(writer, message(topic, 'a'))).to.equal(true)
    expect(await b.authorizePublish(writer, message(topic, 'b'))).to.equal(true)
    await writeFile(file, 'topic readwrite other/#\n')
    await b.access.reload()
    expect(await b.authorizePublish(writer, message(topic, 'c'))).to.equal(ReasonCode.NotAuthorized)
    expect(b.access.stats.publishesDenied).to.equal(1)
  })

  it('stops deliveries of publishers taking turns on one topic (equal, distinct strings) after a reload', async () => {
    const b = backend!
    const reader = await connect(b, 'reader')
    expect(await b.authorizeSubscribe(reader, { topicFilter: '#', qos: 0 })).to.equal(true)
    await b.subscribe(reader, [{ topicFilter: '#', qos: 0 }])
    const a = 'live/x'
    const c = copyOf(a)
    for (const topic of [a, c, a, c]) await b.publish(undefined, message(topic, 'before'))
    expect(reader.payloads()).to.deep.equal(['before', 'before', 'before', 'before'])
    await writeFile(file, 'topic readwrite other/#\n')
    await b.access.reload()
    for (const topic of [a, c]) await b.publish(undefined, message(topic, 'after'))
    expect(reader.payloads()).to.deep.equal(['before', 'before', 'before', 'before'])
    expect(b.access.stats.deliveriesDenied).to.equal(2)
  })
})

describe('access control – which ACLs are shared between connections', () => {
  it('an ACL with a %c rule is its connection\'s own; without one, equal ACLs are one object', async () => {
    expect(new ClientAcl([{ filter: 'devices/%c/#', access: 'readwrite' }], { clientId: 'a', username: undefined, tenant: undefined }, false).perClient).to.equal(true)
    expect(new ClientAcl([{ filter: 'users/%u/#', access: 'readwrite' }], { clientId: 'a', username: 'u', tenant: undefined }, false).perClient).to.equal(false)
    const own = new AccessControl({ acl: [{ filter: 'devices/%c/#', access: 'readwrite' }, { filter: 'x/#', access: 'read' }], bruteForce: false })
    const alike = new AccessControl({ acl: [{ filter: 'x/#', access: 'read' }], bruteForce: false })
    try {
      const [a, b] = [new FakeClient('a'), new FakeClient('b')]
      expect(own.aclOf(a)).to.not.equal(own.aclOf(b))
      expect(alike.aclOf(a)).to.equal(alike.aclOf(b))
      // Same decisions either way.
      expect(own.aclOf(a).mayRead('devices/a/t')).to.equal(true)
      expect(own.aclOf(a).mayRead('devices/b/t')).to.equal(false)
      expect(own.aclOf(b).mayRead('x/1')).to.equal(true)
    } finally {
      await own.close()
      await alike.close()
    }
  })
})
