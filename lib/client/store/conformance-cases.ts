import assert from 'node:assert/strict'
import { commit, META, packet, rejectsStore } from './conformance-harness.js'
import type { MochaGlobals, StoreHarness } from './conformance-harness.js'
import type { StoreSnapshot } from './store.js'

/** Outbound entries as comparable tuples: [seq, packetId, released, packet bytes]. */
function outs(s: StoreSnapshot): [number, number, boolean, string][] {
  return s.outbound.map((e) => [e.seq, e.packetId, e.released, e.packet.toString('hex')])
}

/** Inbound entries as comparable tuples: [seq, packetId, consumed, released, packet bytes]. */
function ins(s: StoreSnapshot): [number, number, boolean, boolean, string][] {
  return s.inbound.map((e) => [e.seq, e.packetId, e.consumed, e.released, e.packet.toString('hex')])
}

const hex = (n: number, size?: number): string => packet(n, size).toString('hex')

/** Binding, locking and lifecycle. */
export function metaCases(h: StoreHarness, m: MochaGlobals): void {
  m.describe('open, meta and lifecycle', () => {
    m.it('opens empty storage as an empty session bound to the meta', async () => {
      const { store, snapshot } = await h.open()
      assert.deepEqual(snapshot.meta, META)
      assert.equal(snapshot.nextSeq, 1)
      assert.deepEqual(snapshot.outbound, [])
      assert.deepEqual(snapshot.inbound, [])
      assert.deepEqual(snapshot.subscriptions, [])
      assert.deepEqual(snapshot.warnings, [])
      const again = await h.reopen(store)
      assert.deepEqual(again.snapshot.meta, META)
    })

    m.it('refuses storage bound to another client id, and keeps it', async () => {
      const { store } = await h.open()
      await commit(store, [{ op: 'out', seq: 1, packet: packet(1) }])
      await store.close()
      await rejectsStore(h.store().open({ ...META, clientId: 'someone-else' }), 'mismatch')
      const { snapshot } = await h.open()
      assert.equal(snapshot.outbound.length, 1)
    })

    m.it('refuses another protocol level while messages are held, rebinds when empty', async () => {
      const { store } = await h.open()
      await commit(store, [{ op: 'out', seq: 1, packet: packet(1) }])
      await store.close()
      await rejectsStore(h.store().open({ ...META, protocolLevel: 5 }), 'mismatch')
      const second = await h.open()
      await commit(second.store, [{ op: 'done', seq: 1 }])
      const third = await h.reopen(second.store, { ...META, protocolLevel: 5 })
      assert.equal(third.snapshot.meta.protocolLevel, 5)
      const fourth = await h.reopen(third.store, { ...META, protocolLevel: 5 })
      assert.equal(fourth.snapshot.meta.protocolLevel, 5)
      assert.equal(fourth.snapshot.nextSeq, 2)
    })

    m.it('keeps a client id assigned by the server (meta record)', async () => {
      const { store } = await h.open({ clientId: '', protocolLevel: 5 })
      await commit(store, [{ op: 'meta', meta: { clientId: '', protocolLevel: 5, assignedClientId: 'auto-7f3a' } }])
      const { snapshot } = await h.reopen(store, { clientId: '', protocolLevel: 5 })
      assert.deepEqual(snapshot.meta, { clientId: '', protocolLevel: 5, assignedClientId: 'auto-7f3a' })
    })

    m.it('refuses a second open of the same storage while it is open', async () => {
      const { store } = await h.open()
      await rejectsStore(h.store().open(META), 'locked')
      await store.close()
      const { snapshot } = await h.open()
      assert.deepEqual(snapshot.meta, META)
    })

    m.it('refuses commits before open and after close; close is idempotent', async () => {
      const fresh = h.store()
      await rejectsStore(fresh.commit([{ op: 'reset' }]), 'closed')
      await fresh.open(META)
      await fresh.close()
      await fresh.close()
      await rejectsStore(fresh.commit([{ op: 'out', seq: 1, packet: packet(1) }]), 'closed')
      const { snapshot } = await h.open()
      assert.deepEqual(snapshot.outbound, [])
    })

    m.it('rejects invalid records and applies nothing of their commit', async () => {
      const { store } = await h.open()
      const bad: unknown[][] = [
        [{ op: 'out', seq: 1, packet: packet(1) }, { op: 'out', seq: 0, packet: packet(2) }],
        [{ op: 'out', seq: 1.5, packet: packet(1) }],
        [{ op: 'out', seq: 1, packet: 'not a buffer' }],
        [{ op: 'out', seq: 1, packet: packet(1), packetId: 70000 }],
        [{ op: 'in', seq: 1, packetId: 0, packet: packet(1) }],
        [{ op: 'id', seq: 1, packetId: -1 }],
        [{ op: 'sub', subscriptions: [{ topicFilter: 'a', qos: 3 }] }],
        [{ op: 'unsub', topicFilters: [7] }],
        [{ op: 'meta', meta: { clientId: 'x', protocolLevel: 6 } }],
        [{ op: 'nonsense' }],
        [null],
      ]
      for (const records of bad) await rejectsStore(store.commit(records as never), 'invalid')
      await commit(store, [{ op: 'out', seq: 1, packet: packet(1) }])
      const { snapshot } = await h.reopen(store)
      assert.deepEqual(outs(snapshot), [[1, 0, false, hex(1)]])
    })

    m.it('rejects a seq that was already used, in either direction', async () => {
      const { store } = await h.open()
      await commit(store, [
        { op: 'out', seq: 5, packet: packet(5) },
        { op: 'in', seq: 6, packetId: 1, packet: packet(6) },
      ])
      await rejectsStore(store.commit([{ op: 'in', seq: 5, packetId: 2, packet: packet(7) }]), 'invalid')
      await rejectsStore(store.commit([{ op: 'out', seq: 6, packet: packet(7) }]), 'invalid')
      await rejectsStore(
        store.commit([
          { op: 'out', seq: 9, packet: packet(9) },
          { op: 'out', seq: 8, packet: packet(8) },
        ]),
        'invalid'
      )
      const { snapshot } = await h.reopen(store)
      assert.equal(snapshot.nextSeq, 7)
      assert.deepEqual(snapshot.outbound.map((e) => e.seq), [5])
    })
  })
}

/** Outbound and inbound message state. */
export function messageCases(h: StoreHarness, m: MochaGlobals): void {
  m.describe('messages', () => {
    m.it('keeps outbound messages in seq order with their bytes and packet ids', async () => {
      const { store } = await h.open()
      await commit(store, [
        { op: 'out', seq: 1, packet: packet(1), packetId: 10 },
        { op: 'out', seq: 2, packet: packet(2) },
      ])
      await commit(store, [{ op: 'out', seq: 3, packet: packet(3), packetId: 0 }])
      const { snapshot } = await h.reopen(store)
      assert.deepEqual(outs(snapshot), [
        [1, 10, false, hex(1)],
        [2, 0, false, hex(2)],
        [3, 0, false, hex(3)],
      ])
      assert.equal(snapshot.nextSeq, 4)
    })

    m.it('records packet ids, PUBREL state and completion', async () => {
      const { store } = await h.open()
      await commit(store, [
        { op: 'out', seq: 1, packet: packet(1), packetId: 1 },
        { op: 'out', seq: 2, packet: packet(2) },
        { op: 'out', seq: 3, packet: packet(3) },
      ])
      await commit(store, [{ op: 'id', seq: 2, packetId: 2 }, { op: 'rel', seq: 1 }])
      const first = await h.reopen(store)
      assert.deepEqual(outs(first.snapshot), [
        [1, 1, true, hex(1)],
        [2, 2, false, hex(2)],
        [3, 0, false, hex(3)],
      ])
      await commit(first.store, [{ op: 'done', seq: 1 }, { op: 'done', seq: 3 }, { op: 'id', seq: 3, packetId: 9 }])
      const second = await h.reopen(first.store)
      assert.deepEqual(outs(second.snapshot), [[2, 2, false, hex(2)]])
    })

    m.it('ignores records about messages it does not hold', async () => {
      const { store } = await h.open()
      await commit(store, [
        { op: 'done', seq: 40 },
        { op: 'rel', seq: 41 },
        { op: 'id', seq: 42, packetId: 3 },
        { op: 'consumed', seq: 43 },
        { op: 'released', seq: 44 },
        { op: 'out', seq: 1, packet: packet(1) },
        { op: 'done', seq: 1 },
        { op: 'done', seq: 1 },
      ])
      const { snapshot } = await h.reopen(store)
      assert.deepEqual(snapshot.outbound, [])
      assert.deepEqual(snapshot.inbound, [])
    })

    m.it('keeps inbound messages until both consumed and released', async () => {
      const { store } = await h.open()
      await commit(store, [
        { op: 'in', seq: 1, packetId: 7, packet: packet(1) },
        { op: 'in', seq: 2, packetId: 8, packet: packet(2) },
        { op: 'in', seq: 3, packetId: 9, packet: packet(3) },
        { op: 'in', seq: 4, packetId: 7, packet: packet(4) },
      ])
      await commit(store, [
        { op: 'consumed', seq: 1 },
        { op: 'released', seq: 2 },
        { op: 'consumed', seq: 3 },
        { op: 'released', seq: 3 },
      ])
      const { store: s2, snapshot } = await h.reopen(store)
      assert.deepEqual(ins(snapshot), [
        [1, 7, true, false, hex(1)],
        [2, 8, false, true, hex(2)],
        [4, 7, false, false, hex(4)],
      ])
      await commit(s2, [{ op: 'released', seq: 1 }, { op: 'consumed', seq: 2 }])
      const third = await h.reopen(s2)
      assert.deepEqual(ins(third.snapshot), [[4, 7, false, false, hex(4)]])
      assert.equal(third.snapshot.nextSeq, 5)
    })

    m.it('reset: outbound lose their packet ids, PUBREL-state ones end, inbound are released', async () => {
      const { store } = await h.open()
      await commit(store, [
        { op: 'out', seq: 1, packet: packet(1), packetId: 1 },
        { op: 'out', seq: 2, packet: packet(2), packetId: 2 },
        { op: 'rel', seq: 2 },
        { op: 'out', seq: 3, packet: packet(3) },
        { op: 'in', seq: 4, packetId: 5, packet: packet(4) },
        { op: 'in', seq: 5, packetId: 6, packet: packet(5) },
        { op: 'consumed', seq: 5 },
        { op: 'sub', subscriptions: [{ topicFilter: 'a/#', qos: 2 }] },
        { op: 'reset' },
      ])
      const { snapshot } = await h.reopen(store)
      assert.deepEqual(outs(snapshot), [
        [1, 0, false, hex(1)],
        [3, 0, false, hex(3)],
      ])
      assert.deepEqual(ins(snapshot), [[4, 5, false, true, hex(4)]])
      assert.deepEqual(snapshot.subscriptions, [{ topicFilter: 'a/#', qos: 2 }])
      assert.equal(snapshot.nextSeq, 6)
    })

    m.it('re-accepts a held outbound message with a new packet id (republish after reset), not a finished one', async () => {
      const { store } = await h.open()
      await commit(store, [
        { op: 'out', seq: 1, packet: packet(1), packetId: 1 },
        { op: 'out', seq: 2, packet: packet(2), packetId: 2 },
        { op: 'rel', seq: 2 },
        { op: 'out', seq: 3, packet: packet(3), packetId: 3 },
        { op: 'done', seq: 3 },
        { op: 'reset' },
      ])
      await commit(store, [
        { op: 'out', seq: 1, packet: packet(1), packetId: 9 },
      ])
      await rejectsStore(store.commit([{ op: 'out', seq: 3, packet: packet(3), packetId: 4 }]), 'invalid')
      await rejectsStore(store.commit([{ op: 'out', seq: 2, packet: packet(2), packetId: 4 }]), 'invalid')
      const { snapshot } = await h.reopen(store)
      assert.deepEqual(outs(snapshot), [[1, 9, false, hex(1)]])
      assert.equal(snapshot.nextSeq, 4)
    })

    m.it('never gives a seq out again once everything is done', async () => {
      const { store } = await h.open()
      for (let seq = 1; seq <= 50; seq++) {
        await commit(store, [{ op: 'out', seq, packet: packet(seq), packetId: seq }, { op: 'done', seq }])
      }
      await commit(store, [{ op: 'in', seq: 51, packetId: 1, packet: packet(51) }, { op: 'consumed', seq: 51 }, { op: 'released', seq: 51 }])
      const first = await h.reopen(store)
      assert.equal(first.snapshot.nextSeq, 52)
      const second = await h.reopen(first.store)
      assert.equal(second.snapshot.nextSeq, 52)
    })

    m.it('handles seqs beyond 32 bits and large binary packets', async () => {
      const { store } = await h.open()
      const big = Buffer.alloc(1 << 20)
      for (let i = 0; i < big.length; i++) big[i] = (i * 131) & 0xff
      const seq = 2 ** 40 + 3
      await commit(store, [{ op: 'out', seq, packet: big, packetId: 65535 }])
      const { snapshot } = await h.reopen(store)
      assert.equal(snapshot.outbound.length, 1)
      assert.equal(snapshot.outbound[0]?.seq, seq)
      assert.equal(snapshot.outbound[0]?.packetId, 65535)
      assert.ok(snapshot.outbound[0]?.packet.equals(big))
      assert.equal(snapshot.nextSeq, seq + 1)
    })

    m.it('applies many commits made without awaiting, in call order', async () => {
      const { store } = await h.open()
      const n = h.features.bulkMessages
      const settled: number[] = []
      const waits: Promise<void>[] = []
      for (let seq = 1; seq <= n; seq++) {
        const records =
          seq % 3 === 0
            ? [{ op: 'out' as const, seq, packet: packet(seq) }, { op: 'done' as const, seq: seq - 1 }]
            : [{ op: 'out' as const, seq, packet: packet(seq), packetId: (seq % 65535) + 1 }]
        waits.push(Promise.resolve(store.commit(records)).then(() => void settled.push(seq)))
      }
      await Promise.all(waits)
      assert.deepEqual(settled, Array.from({ length: n }, (_, i) => i + 1), 'commits settle in call order')
      const { snapshot } = await h.reopen(store)
      const expected = Array.from({ length: n }, (_, i) => i + 1).filter((seq) => (seq + 1) % 3 !== 0 || seq === n)
      assert.deepEqual(
        snapshot.outbound.map((e) => e.seq),
        expected
      )
      assert.ok(snapshot.outbound.every((e) => e.packet.equals(packet(e.seq))))
    })
  })
}

/** The subscription registry. */
export function subscriptionCases(h: StoreHarness, m: MochaGlobals): void {
  m.describe('subscriptions', () => {
    m.it('adds, replaces per filter (keeping the first position) and removes', async () => {
      const { store } = await h.open({ clientId: 'subs', protocolLevel: 5 })
      await commit(store, [
        { op: 'sub', subscriptions: [{ topicFilter: 'a/+', qos: 1 }, { topicFilter: 'b/#', qos: 0, noLocal: true }] },
        { op: 'sub', subscriptions: [{ topicFilter: 'c', qos: 2, retainHandling: 2, subscriptionIdentifier: 12 }] },
        { op: 'sub', subscriptions: [{ topicFilter: 'a/+', qos: 2, retainAsPublished: true }] },
        { op: 'unsub', topicFilters: ['b/#', 'never-subscribed'] },
      ])
      const { snapshot } = await h.reopen(store, { clientId: 'subs', protocolLevel: 5 })
      assert.deepEqual(snapshot.subscriptions, [
        { topicFilter: 'a/+', qos: 2, retainAsPublished: true },
        { topicFilter: 'c', qos: 2, retainHandling: 2, subscriptionIdentifier: 12 },
      ])
    })

    m.it('keeps filters with any UTF-8 text', async () => {
      const { store } = await h.open()
      const filters = ['ünï/cødé/#', 'emoji/📥/+', '$share/g/x', '']
      await commit(store, [{ op: 'sub', subscriptions: filters.map((topicFilter) => ({ topicFilter, qos: 1 as const })) }])
      const { snapshot } = await h.reopen(store)
      assert.deepEqual(
        snapshot.subscriptions.map((s) => s.topicFilter),
        filters
      )
    })
  })
}
