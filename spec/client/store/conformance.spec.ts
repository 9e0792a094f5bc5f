import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { storeConformance } from '../../../lib/client/store/conformance.js'
import { FileStore } from '../../../lib/client/store/file-store.js'
import { MemoryStore } from '../../../lib/client/store/memory-store.js'

storeConformance('MemoryStore', () => {
  const store = new MemoryStore()
  return { store: () => store }
})

for (const sync of ['write', 'fsync'] as const) {
  storeConformance(`FileStore (sync: '${sync}')`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-store-'))
    return {
      store: () => new FileStore(dir, { sync }),
      destroy: () => rmSync(dir, { recursive: true, force: true }),
    }
  })
}

// Compaction on every flush: the same cases over a journal that is rewritten all the time.
storeConformance(`FileStore (compacting at every turn)`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-store-'))
  return {
    store: () => new FileStore(dir, { sync: 'write', compactMinBytes: 0 }),
    destroy: () => rmSync(dir, { recursive: true, force: true }),
  }
})
