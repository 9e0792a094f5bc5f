import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
  writevSync,
} from 'node:fs'
import { join } from 'node:path'
import { chunksLength, encodeRecord, MAGIC, readRecord } from './journal-format.js'
import type { JournalRecord } from './journal-format.js'
import { acquireLock, releaseLock } from './lock.js'
import { bindMeta, StoreState, validateRecords } from './state.js'
import { StoreError } from './store.js'
import type { ClientStore, StoreMeta, StoreRecord, StoreSnapshot, StoreWarning } from './store.js'

/** Options of `FileStore`. */
export interface FileStoreOptions {
  /**
   * When a commit counts as durable. `'fsync'` (default): after `fdatasync(2)` of the batch
   * (and a directory fsync after a compaction): survives a power loss on a disk that honours
   * flushes. `'write'`: after `write(2)` returned: survives a killed process, not a power loss;
   * several times faster.
   */
  sync?: 'write' | 'fsync'
  /** The journal is compacted once it is at least this big and at least half of it is dead (default 1 MiB). */
  compactMinBytes?: number
  /** Called with each warning of recovery (also listed in `StoreSnapshot.warnings`). */
  onWarning?: (warning: StoreWarning) => void
}

/** Counters of a `FileStore` (for tests, metrics and benchmarks). */
export interface FileStoreStats {
  /** Group commits written (one write, and one fdatasync in `fsync` mode, each). */
  batches: number
  /** Records committed. */
  records: number
  /** fdatasync calls made for batches. */
  syncs: number
  compactions: number
  /** Size of the journal file. */
  fileBytes: number
  /** Approximate journal bytes the live messages need. */
  liveBytes: number
  /** Current segment number (it grows by one per compaction). */
  segment: number
}

interface Batch {
  chunks: Buffer[]
  bytes: number
  records: number
  promise: Promise<void>
  resolve: () => void
  reject: (err: Error) => void
}

const SEGMENT = /^(\d{8})\.log$/
const segmentName = (n: number): string => `${String(n).padStart(8, '0')}.log`

function writeAll(fd: number, chunks: Buffer[], total: number): void {
  const written = chunks.length === 1 ? writeSync(fd, chunks[0] as Buffer) : writevSync(fd, chunks)
  if (written === total) return
  // A short write (rare on regular files): write the rest from one buffer.
  const rest = Buffer.concat(chunks).subarray(written)
  let off = 0
  while (off < rest.length) off += writeSync(fd, rest, off)
}

/**
 * A client store in a directory: an append-only, checksummed journal with group commit (all
 * records committed during one event-loop turn go out in one `writev`, plus one `fdatasync` in
 * `sync: 'fsync'` mode), compaction into a fresh segment when the journal is mostly dead, recovery
 * of a torn last record (truncated, reported as a warning) and of damaged records elsewhere
 * (skipped, reported), and a `LOCK` file so that two processes cannot open one store. The record
 * format is in journal-format.ts and docs/client-store.md. One directory per client session.
 */
export class FileStore implements ClientStore {
  readonly dir: string
  private readonly sync: 'write' | 'fsync'
  private readonly compactMinBytes: number
  private readonly onWarning: ((warning: StoreWarning) => void) | undefined
  private state = new StoreState()
  private fd: number | undefined = undefined
  private segment = 0
  private fileBytes = 0
  private isOpen = false
  private opening = false
  private pending: Batch | undefined = undefined
  private inflight: Batch | undefined = undefined
  private scheduled = false
  private failed: StoreError | undefined = undefined
  private readonly counters = { batches: 0, records: 0, syncs: 0, compactions: 0 }

  constructor(dir: string, options: FileStoreOptions = {}) {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('FileStore: dir must be a non-empty path')
    const sync = options.sync ?? 'fsync'
    if (sync !== 'write' && sync !== 'fsync') throw new TypeError(`FileStore: sync must be 'write' or 'fsync', got ${String(sync)}`)
    const min = options.compactMinBytes ?? 1 << 20
    if (!Number.isInteger(min) || min < 0) throw new TypeError('FileStore: compactMinBytes must be a non-negative integer')
    this.dir = dir
    this.sync = sync
    this.compactMinBytes = min
    this.onWarning = options.onWarning
  }

  private get lockPath(): string {
    return join(this.dir, 'LOCK')
  }

  async open(meta: StoreMeta): Promise<StoreSnapshot> {
    await Promise.resolve()
    if (this.isOpen || this.opening) throw new StoreError('locked', `FileStore: ${this.dir} is already open`)
    this.opening = true
    const warnings: StoreWarning[] = []
    const warn = (w: StoreWarning): void => {
      warnings.push(w)
      try {
        this.onWarning?.(w)
      } catch {
        // a throwing hook must not break recovery
      }
    }
    try {
      try {
        mkdirSync(this.dir, { recursive: true })
      } catch (err) {
        throw new StoreError('io', `FileStore: cannot create ${this.dir}: ${(err as Error).message}`, { cause: err })
      }
      acquireLock(this.lockPath, warn)
      try {
        this.recover(warn)
        const bound = bindMeta(this.state, meta)
        if (bound !== undefined) this.appendNow({ op: 'meta', meta: bound })
        if (this.compactionDue(0)) this.compact()
      } catch (err) {
        this.closeFd()
        releaseLock(this.lockPath)
        throw err
      }
    } catch (err) {
      this.opening = false
      if (err instanceof StoreError) throw err
      throw new StoreError('io', `FileStore: cannot open ${this.dir}: ${(err as Error).message}`, { cause: err })
    }
    this.opening = false
    this.isOpen = true
    this.failed = undefined
    return this.state.snapshot(this.state.meta ?? meta, warnings)
  }

  /** Read the newest segment into a fresh state, repairing a torn tail; create the first segment. */
  private recover(warn: (w: StoreWarning) => void): void {
    this.state = new StoreState()
    const names = readdirSync(this.dir)
    for (const name of names) if (name.endsWith('.log.tmp')) unlinkSync(join(this.dir, name))
    const segments = names
      .map((n) => SEGMENT.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b)
    const newest = segments.at(-1)
    if (newest === undefined) {
      this.writeSegment(1, [{ op: 'checkpoint', seq: 1 }])
      return
    }
    // Every segment starts with a checkpoint of the whole state: older ones are superseded (a
    // crash between a compaction's rename and its unlink leaves them behind).
    for (const n of segments) if (n !== newest) unlinkSync(join(this.dir, segmentName(n)))
    const path = join(this.dir, segmentName(newest))
    const buf = readFileSync(path)
    const good = this.replay(buf, path, warn)
    this.fd = openSync(path, 'r+')
    if (good < buf.length) {
      ftruncateSync(this.fd, good)
      if (this.sync === 'fsync') fdatasyncSync(this.fd)
    }
    closeSync(this.fd)
    this.fd = openSync(path, 'a')
    this.segment = newest
    this.fileBytes = good
  }

  /** Apply every readable record of `buf`; returns the length of the good prefix. */
  private replay(buf: Buffer, file: string, warn: (w: StoreWarning) => void): number {
    let off = 0
    while (off < buf.length) {
      const r = readRecord(buf, off)
      if (r.kind === 'record') {
        this.applyJournal(r.record)
        off = r.end
        continue
      }
      if (r.kind === 'unknown') {
        warn({ code: 'unknown-record', message: `skipped a record of format ${r.version}, op ${r.op}`, file, offset: off })
        off = r.end
        continue
      }
      const next = resync(buf, off + 1)
      if (next === -1) {
        warn({
          code: 'torn-tail',
          message: `the last record (${buf.length - off} bytes: ${r.reason}) was cut short by a crash: truncated`,
          file,
          offset: off,
        })
        return off
      }
      warn({ code: 'corrupt-record', message: `skipped ${next - off} damaged bytes (${r.reason})`, file, offset: off })
      off = next
    }
    return off
  }

  private applyJournal(record: JournalRecord): void {
    if (record.op === 'checkpoint') this.state.seen(record.seq - 1)
    else this.state.apply(record)
  }

  commit(records: readonly StoreRecord[]): Promise<void> | undefined {
    try {
      if (!this.isOpen) throw new StoreError('closed', `FileStore: ${this.dir} is not open`)
      if (this.failed !== undefined) {
        throw new StoreError('failed', `FileStore: an earlier write failed (${this.failed.message}); reopen the store`, {
          cause: this.failed,
        })
      }
      validateRecords(records, this.state.nextSeq, (seq) => this.state.outbound.has(seq))
    } catch (err) {
      return Promise.reject(err as Error)
    }
    if (records.length === 0) return (this.pending ?? this.inflight)?.promise
    const batch = this.pending ?? (this.pending = newBatch())
    for (const r of records) {
      this.state.apply(r)
      for (const chunk of encodeRecord(r)) {
        batch.chunks.push(chunk)
        batch.bytes += chunk.length
      }
    }
    batch.records += records.length
    this.schedule()
    return batch.promise
  }

  private schedule(): void {
    if (this.scheduled || this.inflight !== undefined || this.pending === undefined) return
    this.scheduled = true
    setImmediate(this.flush)
  }

  private readonly flush = (): void => {
    this.scheduled = false
    const batch = this.pending
    if (batch === undefined || this.fd === undefined) return
    this.pending = undefined
    this.inflight = batch
    let synced = false
    try {
      if (this.compactionDue(batch.bytes)) {
        this.compact() // the state already holds the batch's records
        synced = true
      } else {
        writeAll(this.fd, batch.chunks, batch.bytes)
        this.fileBytes += batch.bytes
      }
    } catch (err) {
      this.fail(batch, err)
      return
    }
    this.counters.batches++
    this.counters.records += batch.records
    if (this.sync === 'fsync' && !synced) {
      fdatasync(this.fd, (err) => {
        if (err !== null) this.fail(batch, err)
        else {
          this.counters.syncs++
          this.finish(batch)
        }
      })
    } else this.finish(batch)
  }

  private finish(batch: Batch): void {
    this.inflight = undefined
    batch.resolve()
    this.schedule()
  }

  private fail(batch: Batch, cause: unknown): void {
    const error = new StoreError('io', `FileStore: write to ${this.dir} failed: ${(cause as Error).message}`, { cause })
    this.failed = error
    this.inflight = undefined
    batch.reject(error)
    const next = this.pending
    this.pending = undefined
    next?.reject(new StoreError('failed', `FileStore: an earlier write failed (${error.message})`, { cause: error }))
  }

  private compactionDue(extra: number): boolean {
    // Worth it when the dead bytes are at least the live ones (and half the minimum size).
    const total = this.fileBytes + extra
    const live = this.state.liveBytes
    return total >= this.compactMinBytes && total - live >= Math.max(live, this.compactMinBytes / 2)
  }

  /** Write the whole live state as a new segment, switch to it and delete the old one. */
  private compact(): void {
    const old = this.segment
    const records: JournalRecord[] = [{ op: 'checkpoint', seq: this.state.nextSeq }, ...this.state.toRecords()]
    this.closeFd()
    this.writeSegment(old + 1, records)
    this.counters.compactions++
    try {
      unlinkSync(join(this.dir, segmentName(old)))
    } catch {
      // recovery deletes superseded segments
    }
  }

  /** Create segment `n` atomically (tmp + rename) holding `records`, and make it the active one. */
  private writeSegment(n: number, records: JournalRecord[]): void {
    const path = join(this.dir, segmentName(n))
    const tmp = `${path}.tmp`
    const chunks = records.flatMap((r) => encodeRecord(r))
    const bytes = chunksLength(chunks)
    const fd = openSync(tmp, 'w')
    try {
      writeAll(fd, chunks, bytes)
      if (this.sync === 'fsync') fdatasyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
    if (this.sync === 'fsync') this.syncDir()
    this.fd = openSync(path, 'a')
    this.segment = n
    this.fileBytes = bytes
  }

  /** Append one record synchronously (during `open`, before anything else is written). */
  private appendNow(record: StoreRecord): void {
    if (this.fd === undefined) throw new StoreError('closed', 'FileStore: no journal')
    this.state.apply(record)
    const chunks = encodeRecord(record)
    const bytes = chunksLength(chunks)
    writeAll(this.fd, chunks, bytes)
    if (this.sync === 'fsync') fdatasyncSync(this.fd)
    this.fileBytes += bytes
  }

  private syncDir(): void {
    const fd = openSync(this.dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  }

  private closeFd(): void {
    if (this.fd === undefined) return
    try {
      closeSync(this.fd)
    } catch {
      // already closed
    }
    this.fd = undefined
  }

  async close(): Promise<void> {
    if (!this.isOpen) return
    this.isOpen = false
    const last = this.pending ?? this.inflight
    if (last !== undefined) await last.promise.catch(() => undefined)
    this.closeFd()
    releaseLock(this.lockPath)
  }

  /** Counters and sizes (cheap; no I/O). */
  stats(): FileStoreStats {
    return {
      ...this.counters,
      fileBytes: this.fileBytes,
      liveBytes: this.state.liveBytes,
      segment: this.segment,
    }
  }
}

function newBatch(): Batch {
  let resolve!: () => void
  let reject!: (err: Error) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { chunks: [], bytes: 0, records: 0, promise, resolve, reject }
}

/** The offset of the next readable record after a damaged one, or -1 when none follows. */
function resync(buf: Buffer, from: number): number {
  const marker = Buffer.from([MAGIC >> 8, MAGIC & 0xff])
  let at = buf.indexOf(marker, from)
  while (at !== -1) {
    if (readRecord(buf, at).kind !== 'bad') return at
    at = buf.indexOf(marker, at + 1)
  }
  return -1
}
