/**
 * Client session stores: the contract, MemoryStore, FileStore and the state fold shared by
 * journal-based stores. The conformance suite is a separate entry (`./conformance.js`): it uses
 * mocha's globals and is meant for specs only. See docs/client-store.md.
 */
export { StoreError } from './store.js'
export type {
  ClientStore,
  InboundEntry,
  OutboundEntry,
  StoreErrorCode,
  StoreMeta,
  StoreRecord,
  StoreSnapshot,
  StoredSubscription,
  StoreWarning,
} from './store.js'
export { MemoryStore } from './memory-store.js'
export { FileStore } from './file-store.js'
export type { FileStoreOptions, FileStoreStats } from './file-store.js'
export { StoreState, validateRecords } from './state.js'
export { decodeStoredPublish } from './stored-publish.js'
