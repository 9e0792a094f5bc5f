import { expect } from 'chai'
import fc from 'fast-check'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStore } from '../../../lib/client/store/file-store.js'
import { StoreState } from '../../../lib/client/store/state.js'
import type { StoreMeta, StoreRecord, StoreSnapshot } from '../../../lib/client/store/store.js'

const META: StoreMeta = { clientId: 'property', protocolLevel: 5 }
const KINDS = ['out', 'out', 'in', 'id', 'rel', 'done', 'consumed', 'released', 'sub', 'unsub', 'reset', 'meta'] as const

/** An abstract step: a kind and random numbers, turned into a valid record against the model. */
const step = fc.record({
  kind: fc.constantFrom(...KINDS),
  pick: fc.nat(),
  size: fc.integer({ min: 1, max: 300 }),
  id: fc.integer({ min: 1, max: 65535 }),
  filter: fc.constantFrom('a', 'a/+', 'b/#', 'c/d/e', '$share/g/x'),
})

type Step = typeof step extends fc.Arbitrary<infer T> ? T : never

function record(model: StoreState, s: Step): StoreRecord {
  const outs = [...model.outbound.keys()]
  const ins = [...model.inbound.keys()]
  const pickFrom = (seqs: number[]): number => (seqs.length === 0 ? model.nextSeq + 1000 : (seqs[s.pick % seqs.length] as number))
  const packet = Buffer.alloc(s.size, s.pick & 0xff)
  switch (s.kind) {
    case 'out':
      return { op: 'out', seq: model.nextSeq, packet, packetId: s.pick % 3 === 0 ? 0 : s.id }
    case 'in':
      return { op: 'in', seq: model.nextSeq, packetId: s.id, packet }
    case 'id':
      return { op: 'id', seq: pickFrom(outs), packetId: s.id }
    case 'rel':
    case 'done':
      return { op: s.kind, seq: pickFrom(outs) }
    case 'consumed':
    case 'released':
      return { op: s.kind, seq: pickFrom(ins) }
    case 'sub':
      return { op: 'sub', subscriptions: [{ topicFilter: s.filter, qos: (s.pick % 3) as 0 | 1 | 2 }] }
    case 'unsub':
      return { op: 'unsub', topicFilters: [s.filter] }
    case 'reset':
      return { op: 'reset' }
    case 'meta':
      return { op: 'meta', meta: { ...META, assignedClientId: `auto-${s.pick % 100}` } }
  }
}

/** What must survive, comparably. */
function view(s: { outbound: StoreSnapshot['outbound']; inbound: StoreSnapshot['inbound']; subscriptions: StoreSnapshot['subscriptions']; nextSeq: number; meta: StoreMeta }): unknown {
  return {
    meta: s.meta,
    nextSeq: s.nextSeq,
    out: s.outbound.map((e) => [e.seq, e.packetId, e.released, e.packet.toString('base64')]),
    in: s.inbound.map((e) => [e.seq, e.packetId, e.consumed, e.released, e.packet.toString('base64')]),
    subs: s.subscriptions,
  }
}

function modelView(model: StoreState): unknown {
  return view(model.snapshot(model.meta ?? META, []))
}

function journal(dir: string): string {
  return join(dir, readdirSync(dir).find((n) => n.endsWith('.log')) as string)
}

describe('FileStore (property: random journals)', function () {
  this.timeout(120_000)
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('reopens to exactly the state its records describe, with or without compaction', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(step, { minLength: 1, maxLength: 4 }), { maxLength: 40 }), fc.constantFrom(0, 512, 1 << 20), fc.boolean(), async (batches, compactMinBytes, awaitEach) => {
        const dir = mkdtempSync(join(tmpdir(), 'mqtt-store-prop-'))
        dirs.push(dir)
        const model = new StoreState()
        model.apply({ op: 'meta', meta: META })
        const store = new FileStore(dir, { sync: 'write', compactMinBytes })
        await store.open(META)
        const waits: (Promise<void> | undefined)[] = []
        for (const steps of batches) {
          const records: StoreRecord[] = []
          for (const s of steps) {
            const r = record(model, s)
            model.apply(r)
            records.push(r)
          }
          const w = store.commit(records)
          if (awaitEach) await w
          else waits.push(w)
        }
        await Promise.all(waits)
        await store.close()
        const again = new FileStore(dir, { sync: 'write', compactMinBytes })
        const snap = await again.open(META)
        await again.close()
        expect(snap.warnings).to.deep.equal([])
        expect(view(snap)).to.deep.equal(modelView(model))
      }),
      { numRuns: 60 }
    )
  })

  it('cut anywhere, reopens to the state of the records wholly before the cut, with at most one warning', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), fc.double({ min: 0, max: 1, noNaN: true }), async (steps, where) => {
        const dir = mkdtempSync(join(tmpdir(), 'mqtt-store-prop-'))
        dirs.push(dir)
        const model = new StoreState()
        model.apply({ op: 'meta', meta: META })
        const store = new FileStore(dir, { sync: 'write', compactMinBytes: 1 << 30 })
        await store.open(META)
        // One record per batch, awaited: the journal size after each is a record boundary.
        const boundaries: { end: number; view: unknown }[] = [{ end: statSync(journal(dir)).size, view: modelView(model) }]
        for (const s of steps) {
          const r = record(model, s)
          model.apply(r)
          await store.commit([r])
          boundaries.push({ end: statSync(journal(dir)).size, view: modelView(model) })
        }
        await store.close()
        const path = journal(dir)
        const full = readFileSync(path)
        const first = boundaries[0]!.end
        const cut = first + Math.floor(where * (full.length - first))
        writeFileSync(path, full.subarray(0, cut))
        const expected = boundaries.filter((b) => b.end <= cut).at(-1)!
        const again = new FileStore(dir, { sync: 'write' })
        const snap = await again.open(META)
        expect(view(snap)).to.deep.equal(expected.view)
        expect(snap.warnings.map((w) => w.code)).to.deep.equal(expected.end === cut ? [] : ['torn-tail'])
        // The repaired journal goes on: a record appended now is there, cleanly, after a reopen.
        await again.commit([{ op: 'out', seq: snap.nextSeq, packet: Buffer.from('after the cut') }])
        await again.close()
        const third = new FileStore(dir, { sync: 'write' })
        const after = await third.open(META)
        await third.close()
        expect(after.warnings).to.deep.equal([])
        expect(after.outbound.at(-1)?.packet.toString()).to.equal('after the cut')
      }),
      { numRuns: 60 }
    )
  })
})
