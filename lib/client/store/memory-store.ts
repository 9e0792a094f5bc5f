import { bindMeta, StoreState, validateRecords } from './state.js'
import { StoreError } from './store.js'
import type { ClientStore, StoreMeta, StoreRecord, StoreSnapshot } from './store.js'

/**
 * A store in this process's memory: the session survives reconnects and `close()`/`open()` of the
 * same instance (a Service stopped and started again), not the end of the process. `commit`
 * applies records synchronously and returns `undefined` (no promise per call). The default store.
 */
export class MemoryStore implements ClientStore {
  private readonly state = new StoreState()
  private isOpen = false

  open(meta: StoreMeta): Promise<StoreSnapshot> {
    try {
      if (this.isOpen) throw new StoreError('locked', 'MemoryStore: already open')
      const bound = bindMeta(this.state, meta)
      if (bound !== undefined) this.state.apply({ op: 'meta', meta: bound })
      this.isOpen = true
      const current = this.state.meta ?? meta
      return Promise.resolve(this.state.snapshot(current, []))
    } catch (err) {
      return Promise.reject(err as Error)
    }
  }

  commit(records: readonly StoreRecord[]): void | Promise<void> {
    try {
      if (!this.isOpen) throw new StoreError('closed', 'MemoryStore: not open')
      validateRecords(records, this.state.nextSeq, (seq) => this.state.outbound.has(seq))
    } catch (err) {
      return Promise.reject(err as Error)
    }
    for (const r of records) this.state.apply(r)
  }

  close(): Promise<void> {
    this.isOpen = false
    return Promise.resolve()
  }
}
