import assert from 'node:assert/strict'
import type { Awaitable } from '../../util/awaitable.js'
import { isPromise } from '../../util/awaitable.js'
import type { ClientStore, StoreMeta, StoreRecord, StoreSnapshot } from './store.js'
export { mochaGlobals } from '../../util/mocha-globals.js'
export type { MochaGlobals } from '../../util/mocha-globals.js'

/** Where a store under test keeps its state, and how to make instances of it. */
export interface StoreFixture {
  /**
   * A store over this fixture's storage. Called once per case and again for every "reopen": an
   * instance made later must see what earlier instances committed before they were closed. May
   * return the same instance every time (MemoryStore).
   */
  store(): ClientStore
  /** Remove the storage after the case (the suite has closed every instance). */
  destroy?(): Awaitable<void>
}

/** Optional abilities of the store under test. */
export interface StoreFeatures {
  /**
   * How many messages the bulk case commits without awaiting (default 2000). Lower it for a
   * store that is slow per record; keep at least 100.
   */
  bulkMessages?: number
}


/** One case's fixture plus every instance it opened (closed after the case). */
export class StoreHarness {
  private fixture: StoreFixture | undefined = undefined
  private readonly opened = new Set<ClientStore>()
  readonly features: Required<StoreFeatures>

  constructor(
    private readonly factory: () => Awaitable<StoreFixture>,
    features: StoreFeatures
  ) {
    this.features = { bulkMessages: features.bulkMessages ?? 2000 }
  }

  async start(): Promise<void> {
    this.fixture = await this.factory()
  }

  async stop(): Promise<void> {
    for (const s of this.opened) await s.close()
    this.opened.clear()
    await this.fixture?.destroy?.()
    this.fixture = undefined
  }

  /** A new store instance over the case's storage, opened with `meta`. */
  async open(meta: StoreMeta = META): Promise<{ store: ClientStore; snapshot: StoreSnapshot }> {
    const store = this.store()
    const snapshot = await store.open(meta)
    return { store, snapshot }
  }

  /** Close `store` and open the storage again (a restart): what survived. */
  async reopen(store: ClientStore, meta: StoreMeta = META): Promise<{ store: ClientStore; snapshot: StoreSnapshot }> {
    await store.close()
    return this.open(meta)
  }

  /** A store instance over the case's storage (tracked for closing). */
  store(): ClientStore {
    if (this.fixture === undefined) throw new Error('storeConformance: no fixture (start() not called)')
    const s = this.fixture.store()
    this.opened.add(s)
    return s
  }
}


/** The meta every case opens with unless it says otherwise. */
export const META: StoreMeta = { clientId: 'conformance-client', protocolLevel: 4 }

/** Commit and wait until durable, whatever the store returns. */
export async function commit(store: ClientStore, records: readonly StoreRecord[]): Promise<void> {
  const r = store.commit(records)
  if (isPromise(r)) await r
}

/** A recognisable fake PUBLISH (the store treats packets as opaque bytes). */
export function packet(n: number, size = 24): Buffer {
  const b = Buffer.alloc(Math.max(size, 8))
  b[0] = 0x32
  b.writeUInt32BE(n >>> 0, 2)
  for (let i = 6; i < b.length; i++) b[i] = (n * 31 + i * 7) & 0xff
  return b
}

/** Assert that `p` rejects with a StoreError (by `code`) of `reason`. */
export async function rejectsStore(p: unknown, reason: string): Promise<void> {
  await assert.rejects(Promise.resolve(p), (err: unknown) => {
    const e = err as { code?: unknown; reason?: unknown; name?: unknown }
    assert.equal(e.code, 'ERR_MQTT_STORE', `expected a StoreError, got ${String(err)}`)
    assert.equal(e.reason, reason)
    return true
  })
}
