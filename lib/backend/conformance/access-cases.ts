import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AccessControlBackend } from '../../auth/access-backend.js'
import type { AccessControlOptions } from '../../auth/access-control.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { ProtocolLevel } from '../../packet/types.js'
import { FakeClient, message, sub } from './harness.js'
import type { Harness, MochaGlobals } from './harness.js'
import type { Session, StoredSubscription } from '../../session/session.js'

/** A fake client connected through the access-control decorator. */
interface Guarded {
  client: FakeClient
  session: Session
}

/**
 * Access control (lib/auth) as a decorator around the backend under test: read access checked per
 * delivery (live, retained, offline, shared), refusals of PUBLISH and SUBSCRIBE, rule changes
 * reaching existing subscriptions. Every backend gets these without writing anything.
 */
export function accessCases(h: Harness, { describe, it }: MochaGlobals): void {
  function wrap(options: AccessControlOptions): AccessControlBackend {
    // The decorator does not own the backend: the harness closes it after the case.
    return new AccessControlBackend(h.backend, { bruteForce: false, ...options })
  }

  async function connect(b: AccessControlBackend, clientId: string, clean = true, level: ProtocolLevel = 5): Promise<Guarded> {
    const client = new FakeClient(clientId, level)
    const connect = { type: 'connect', protocolLevel: level, clientId, clean, keepalive: 0 } as const
    const verdict = await b.authenticate(client, { clientId, username: undefined, password: undefined, connect })
    assert.equal(verdict.result, 'allow')
    const { session } = await b.setup(client, clean, clean ? 0 : 0xffff_ffff)
    await b.queueOffline(client)
    return { client, session }
  }

  async function subscribe(b: AccessControlBackend, g: Guarded, s: StoredSubscription): Promise<unknown> {
    const verdict = await b.authorizeSubscribe(g.client, s)
    if (verdict !== true) return verdict
    return (await b.subscribe(g.client, [s]))[0]
  }

  const acl: AccessControlOptions = {
    acl: [
      { filter: '#', access: 'readwrite' },
      { filter: 'secret/#', access: 'deny' },
      { filter: 'own/%c/#', access: 'read' }
    ]
  }

  describe('access control decorator', () => {
    it('a # subscriber receives only the topics it may read; refused publishes and subscriptions', async () => {
      const b = wrap(acl)
      const reader = await connect(b, 'reader')
      assert.equal(await subscribe(b, reader, sub('#')), 0)
      assert.equal(await subscribe(b, reader, sub('secret/x')), ReasonCode.NotAuthorized)
      const writer = await connect(b, 'writer')
      assert.equal(await b.authorizePublish(writer.client, message('secret/a', 'no')), ReasonCode.NotAuthorized)
      assert.equal(await b.authorizePublish(writer.client, message('open/a', 'yes')), true)
      // Published past the check (as a broker-made message could be): still not delivered.
      await b.publish(undefined, message('secret/a', 'hidden'))
      await b.publish(writer.client, message('open/a', 'seen'))
      await b.publish(undefined, message('own/reader/x', 'mine'))
      await h.until(() => reader.client.deliveries.length >= 2)
      assert.deepEqual(reader.client.payloads().sort(), ['mine', 'seen'])
      assert.equal(b.access.stats.deliveriesDenied, 1)
    })

    it('filters retained messages per reader', async () => {
      const b = wrap(acl)
      await b.storeRetained(undefined, message('secret/r', 'hidden', 0, { retain: true }))
      await b.storeRetained(undefined, message('open/r', 'seen', 0, { retain: true }))
      const reader = await connect(b, 'reader')
      await b.queueRetained(reader.client, sub('#'))
      await h.until(() => reader.client.deliveries.length >= 1)
      assert.deepEqual(reader.client.payloads(), ['seen'])
    })

    it('filters what was queued while a persistent session was away', async () => {
      const b = wrap(acl)
      const first = await connect(b, 'away', false)
      await subscribe(b, first, sub('#', 1))
      first.client.connected = false
      await b.terminate(first.client)
      await b.publish(undefined, message('secret/q', 'hidden', 1))
      await b.publish(undefined, message('open/q', 'seen', 1))
      const again = await connect(b, 'away', false)
      await h.until(() => again.client.deliveries.length >= 1)
      assert.deepEqual(again.client.payloads(), ['seen'])
      again.client.connected = false
      await b.terminate(again.client)
    })

    it('stops delivering on existing subscriptions when a rule is removed', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'acl-'))
      try {
        const file = join(dir, 'acl')
        writeFileSync(file, 'topic readwrite live/#\n')
        const b = wrap({ aclFiles: [file] })
        const reader = await connect(b, 'reader')
        assert.equal(await subscribe(b, reader, sub('live/#')), 0)
        await b.publish(undefined, message('live/1', 'before'))
        await h.until(() => reader.client.deliveries.length >= 1)
        writeFileSync(file, 'topic readwrite other/#\n')
        await b.access.reload()
        await b.publish(undefined, message('live/2', 'after'))
        await h.settle()
        assert.deepEqual(reader.client.payloads(), ['before'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    if (h.features.sharedSubscriptions !== false) {
      it('a shared-group member that may not read passes the message to one that may', async () => {
        const b = wrap({ acl: [{ filter: 'jobs/#', access: 'read' }, { filter: 'jobs/#', access: 'deny', client: 'blind' }] })
        const blind = await connect(b, 'blind')
        const seeing = await connect(b, 'seeing')
        // The blind member may not subscribe ($share is looked through: the deny covers jobs/#)...
        assert.equal(await subscribe(b, blind, sub('$share/g/jobs/#')), ReasonCode.NotAuthorized)
        // ...but had subscribed before the rule came: its subscription stays and gets nothing.
        assert.deepEqual(await b.subscribe(blind.client, [sub('$share/g/jobs/#')]), [0])
        assert.equal(await subscribe(b, seeing, sub('$share/g/jobs/#')), 0)
        for (let i = 0; i < 4; i++) await b.publish(undefined, message('jobs/x', `j${i}`))
        await h.until(() => seeing.client.deliveries.length >= 4)
        assert.equal(blind.client.deliveries.length, 0)
        assert.deepEqual(seeing.client.payloads().sort(), ['j0', 'j1', 'j2', 'j3'])
      })
    }
  })
}
