import { expect } from 'chai'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeRecord } from '../../../lib/client/store/journal-format.js'
import { FileStore } from '../../../lib/client/store/file-store.js'
import type { FileStoreOptions } from '../../../lib/client/store/file-store.js'
import { StoreError } from '../../../lib/client/store/store.js'
import type { StoreMeta, StoreRecord, StoreSnapshot, StoreWarning } from '../../../lib/client/store/store.js'
import { useTeardown } from '../../helpers/teardown.js'

const META: StoreMeta = { clientId: 'file-store-spec', protocolLevel: 4 }
const CHILD = fileURLToPath(new URL('./fixtures/store-child.ts', import.meta.url))

function pkt(n: number, size = 40): Buffer {
  const b = Buffer.alloc(size, n & 0xff)
  b.write(`p${n}`, 0)
  return b
}

function journal(dir: string): string {
  const logs = readdirSync(dir).filter((n) => n.endsWith('.log'))
  expect(logs, 'one journal segment').to.have.length(1)
  return join(dir, logs[0] as string)
}

async function commit(store: FileStore, records: StoreRecord[]): Promise<void> {
  await store.commit(records)
}

function summary(s: StoreSnapshot): { out: number[]; in: number[]; subs: string[]; next: number } {
  return {
    out: s.outbound.map((e) => e.seq),
    in: s.inbound.map((e) => e.seq),
    subs: s.subscriptions.map((x) => x.topicFilter),
    next: s.nextSeq,
  }
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    child.stdout?.on('data', (d: Buffer) => {
      text += d.toString()
      const m = pattern.exec(text)
      if (m !== null) resolve(m[0])
    })
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before ${pattern}: ${text}`)))
  })
}

describe('FileStore', function () {
  this.timeout(60_000)
  const teardown = useTeardown()

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-file-store-'))
    teardown.defer(() => rmSync(dir, { recursive: true, force: true }))
    return dir
  }

  function store(dir: string, options: FileStoreOptions = {}): FileStore {
    return teardown.add(new FileStore(dir, { sync: 'write', ...options }), (s) => s.close())
  }

  describe('recovery of a torn last record', () => {
    const lastRecords: [string, StoreRecord][] = [
      ['an out record', { op: 'out', seq: 4, packet: pkt(4, 150), packetId: 9 }],
      ['a done record', { op: 'done', seq: 2 }],
      ['a sub record', { op: 'sub', subscriptions: [{ topicFilter: 'late/#', qos: 1 }] }],
    ]
    for (const [name, last] of lastRecords) {
      it(`opens with a warning at every byte offset of ${name}, and keeps everything before it`, async () => {
        const dir = tempDir()
        const s = store(dir)
        await s.open(META)
        await commit(s, [
          { op: 'out', seq: 1, packet: pkt(1), packetId: 1 },
          { op: 'out', seq: 2, packet: pkt(2) },
          { op: 'in', seq: 3, packetId: 5, packet: pkt(3) },
          { op: 'sub', subscriptions: [{ topicFilter: 'a/#', qos: 2 }] },
        ])
        const good = statSync(journal(dir)).size
        await commit(s, [last])
        await s.close()
        const path = journal(dir)
        const full = readFileSync(path)
        const recordLength = full.length - good
        expect(recordLength).to.equal(encodeRecord(last).reduce((n, c) => n + c.length, 0))
        for (let cut = good; cut < full.length; cut++) {
          writeFileSync(path, full.subarray(0, cut))
          const warnings: StoreWarning[] = []
          const reopened = new FileStore(dir, { sync: 'write', onWarning: (w) => warnings.push(w) })
          const snap = await reopened.open(META)
          expect(summary(snap), `cut at ${cut - good}`).to.deep.equal({ out: [1, 2], in: [3], subs: ['a/#'], next: 4 })
          if (cut === good) expect(snap.warnings).to.deep.equal([])
          else {
            expect(snap.warnings.map((w) => [w.code, w.offset]), `cut at ${cut - good}`).to.deep.equal([['torn-tail', good]])
            expect(warnings).to.deep.equal(snap.warnings)
          }
          expect(statSync(path).size, 'the torn bytes are cut off').to.equal(good)
          await reopened.close()
        }
        // The repaired journal takes new records and opens clean.
        const again = store(dir)
        expect((await again.open(META)).warnings).to.deep.equal([])
        await commit(again, [{ op: 'out', seq: 4, packet: pkt(4) }])
        await again.close()
        const last2 = store(dir)
        const snap = await last2.open(META)
        expect(snap.warnings).to.deep.equal([])
        expect(summary(snap).out).to.deep.equal([1, 2, 4])
      })
    }

    it('treats a complete last record with a bad checksum as torn', async () => {
      const dir = tempDir()
      const s = store(dir)
      await s.open(META)
      await commit(s, [{ op: 'out', seq: 1, packet: pkt(1) }])
      const good = statSync(journal(dir)).size
      await commit(s, [{ op: 'out', seq: 2, packet: pkt(2) }])
      await s.close()
      const full = readFileSync(journal(dir))
      full[full.length - 3] = (full[full.length - 3] ?? 0) ^ 0x01
      writeFileSync(journal(dir), full)
      const snap = await store(dir).open(META)
      expect(summary(snap).out).to.deep.equal([1])
      expect(snap.warnings.map((w) => w.code)).to.deep.equal(['torn-tail'])
      expect(statSync(journal(dir)).size).to.equal(good)
    })

    it('skips a damaged record in the middle (any byte flipped) with one warning and keeps the rest', async () => {
      const dir = tempDir()
      const s = store(dir)
      await s.open(META)
      await commit(s, [{ op: 'out', seq: 1, packet: pkt(1) }])
      const start = statSync(journal(dir)).size
      await commit(s, [{ op: 'out', seq: 2, packet: pkt(2) }])
      const end = statSync(journal(dir)).size
      await commit(s, [{ op: 'out', seq: 3, packet: pkt(3) }, { op: 'in', seq: 4, packetId: 1, packet: pkt(4) }])
      await s.close()
      const path = journal(dir)
      const full = readFileSync(path)
      for (let at = start; at < end; at++) {
        const damaged = Buffer.from(full)
        damaged[at] = (damaged[at] ?? 0) ^ 0x5a
        writeFileSync(path, damaged)
        const reopened = new FileStore(dir, { sync: 'write' })
        const snap = await reopened.open(META)
        expect(summary(snap), `byte ${at - start}`).to.deep.equal({ out: [1, 3], in: [4], subs: [], next: 5 })
        expect(snap.warnings.map((w) => [w.code, w.offset]), `byte ${at - start}`).to.deep.equal([['corrupt-record', start]])
        await reopened.close()
      }
    })

    it('skips a record of a newer format version with a warning', async () => {
      const dir = tempDir()
      const s = store(dir)
      await s.open(META)
      await s.close()
      const future = encodeRecord({ op: 'reset' })[0] as Buffer
      future[10] = 2 // format version 2 (checksum recomputed below)
      const { crc32 } = await import('node:zlib')
      future.writeUInt32BE(crc32(future.subarray(10), crc32(future.subarray(2, 6))), 6)
      writeFileSync(journal(dir), Buffer.concat([readFileSync(journal(dir)), future]))
      const again = store(dir)
      const snap = await again.open(META)
      expect(snap.warnings.map((w) => w.code)).to.deep.equal(['unknown-record'])
      await commit(again, [{ op: 'out', seq: 1, packet: pkt(1) }])
      await again.close()
      expect(summary(await store(dir).open(META)).out).to.deep.equal([1])
    })
  })

  describe('group commit and sync modes', () => {
    for (const sync of ['write', 'fsync'] as const) {
      it(`writes all commits of one event-loop turn as one batch (sync: '${sync}')`, async () => {
        const s = store(tempDir(), { sync })
        await s.open(META)
        const waits: (Promise<void> | undefined)[] = []
        for (let seq = 1; seq <= 500; seq++) waits.push(s.commit([{ op: 'out', seq, packet: pkt(seq) }]))
        expect(waits.every((w) => w instanceof Promise)).to.equal(true)
        await Promise.all(waits)
        expect(s.stats()).to.include({ batches: 1, records: 500, syncs: sync === 'fsync' ? 1 : 0 })
        await Promise.all([s.commit([{ op: 'done', seq: 1 }]), s.commit([{ op: 'done', seq: 2 }])])
        expect(s.stats()).to.include({ batches: 2, records: 502, syncs: sync === 'fsync' ? 2 : 0 })
      })
    }

    it("sync: 'fsync' has synced every batch by the time its commits resolve", async () => {
      const s = store(tempDir(), { sync: 'fsync' })
      await s.open(META)
      const seen: [number, number][] = []
      for (let round = 1; round <= 5; round++) {
        const waits: Promise<void>[] = []
        for (let k = 0; k < 10; k++) {
          const seq = round * 100 + k
          waits.push(Promise.resolve(s.commit([{ op: 'out', seq, packet: pkt(seq) }])).then(() => void seen.push([s.stats().batches, s.stats().syncs])))
        }
        await Promise.all(waits)
      }
      expect(seen).to.have.length(50)
      for (const [batches, syncs] of seen) expect(syncs).to.equal(batches)
      expect(s.stats()).to.include({ batches: 5, syncs: 5 })
    })

    it("sync: 'fsync' resolves a commit only after fdatasync(2) of its write returned (strace)", function () {
      const dir = tempDir()
      const trace = join(dir, 'trace.txt')
      const run = (sync: string): { lines: string[]; stdout: string } => {
        const r = spawnSync(
          'strace',
          ['-f', '-s', '64', '-e', 'trace=write,writev,fdatasync', '-o', trace, process.execPath, '--import', 'tsx', CHILD, 'commits', join(dir, sync), sync],
          { encoding: 'utf8', timeout: 50_000 }
        )
        expect(r.error, 'this spec needs strace(1) on the PATH').to.equal(undefined)
        expect(r.status, r.stderr).to.equal(0)
        return { lines: readFileSync(trace, 'utf8').split('\n'), stdout: r.stdout }
      }
      const fsync = run('fsync')
      expect(fsync.stdout).to.equal('resolved 1\nresolved 2\nresolved 3\n')
      for (let k = 1; k <= 3; k++) {
        const wrote = fsync.lines.findIndex((l) => l.includes(`marker-packet-${k}`))
        const resolved = fsync.lines.findIndex((l) => l.includes(`"resolved ${k}`))
        expect(wrote, `journal write ${k}`).to.be.greaterThan(-1)
        expect(resolved, `resolved ${k}`).to.be.greaterThan(wrote)
        const between = fsync.lines.slice(wrote + 1, resolved)
        const done = between.filter((l) => /fdatasync\(.*= 0|<\.\.\. fdatasync resumed>.*= 0/.test(l))
        expect(done.length, `an fdatasync completes between write ${k} and its resolution`).to.be.greaterThan(0)
      }
      const write = run('write')
      expect(write.stdout).to.equal('resolved 1\nresolved 2\nresolved 3\n')
      expect(write.lines.filter((l) => l.includes('fdatasync(')), "no fdatasync in 'write' mode").to.deep.equal([])
      expect(write.lines.findIndex((l) => l.includes('marker-packet-3'))).to.be.lessThan(
        write.lines.findIndex((l) => l.includes('"resolved 3'))
      )
    })

    it('fails a commit whose write fails, refuses later commits, and recovers on reopen', async () => {
      const dir = tempDir()
      const s = store(dir)
      await s.open(META)
      await commit(s, [{ op: 'out', seq: 1, packet: pkt(1) }])
      // Swap the journal descriptor for a read-only one: the next write(2) fails with EBADF.
      const internals = s as unknown as { fd: number }
      const writable = internals.fd
      internals.fd = openSync(journal(dir), 'r')
      teardown.defer(() => closeSync(writable))
      const failed = s.commit([{ op: 'out', seq: 2, packet: pkt(2) }])
      const err = await Promise.resolve(failed).then(() => undefined, (e: unknown) => e)
      expect(err).to.be.instanceOf(StoreError).and.to.include({ reason: 'io', code: 'ERR_MQTT_STORE' })
      const later = await Promise.resolve(s.commit([{ op: 'out', seq: 3, packet: pkt(3) }])).then(() => undefined, (e: unknown) => e)
      expect(later).to.be.instanceOf(StoreError).and.to.include({ reason: 'failed' })
      await s.close()
      const snap = await store(dir).open(META)
      expect(summary(snap).out).to.deep.equal([1])
    })
  })

  describe('compaction', () => {
    it('rewrites a mostly dead journal into a fresh segment and keeps the live state', async () => {
      const dir = tempDir()
      const s = store(dir, { compactMinBytes: 8192 })
      await s.open(META)
      await commit(s, [{ op: 'sub', subscriptions: [{ topicFilter: 'keep/#', qos: 1 }] }])
      const kept: number[] = []
      for (let seq = 1; seq <= 3000; seq++) {
        await commit(s, [{ op: 'out', seq, packet: pkt(seq, 100), packetId: (seq % 1000) + 1 }])
        if (seq % 250 === 0) kept.push(seq)
        else await commit(s, [{ op: 'done', seq }])
      }
      await commit(s, [{ op: 'rel', seq: 250 }])
      const stats = s.stats()
      expect(stats.compactions).to.be.greaterThan(5)
      expect(stats.segment).to.equal(stats.compactions + 1)
      expect(stats.fileBytes).to.be.lessThan(3 * 8192)
      expect(readdirSync(dir).sort()).to.deep.equal([`${String(stats.segment).padStart(8, '0')}.log`, 'LOCK'])
      await s.close()
      const snap = await store(dir).open(META)
      expect(snap.warnings).to.deep.equal([])
      expect(summary(snap)).to.deep.equal({ out: kept, in: [], subs: ['keep/#'], next: 3001 })
      expect(snap.outbound[0]).to.include({ seq: 250, packetId: 251, released: true })
      expect(snap.outbound.every((e) => e.packet.equals(pkt(e.seq, 100)))).to.equal(true)
    })

    it('drops to one small segment once every message is done', async () => {
      const dir = tempDir()
      const s = store(dir, { compactMinBytes: 4096 })
      await s.open(META)
      for (let seq = 1; seq <= 500; seq++) {
        await commit(s, [{ op: 'out', seq, packet: pkt(seq, 64) }])
      }
      for (let seq = 1; seq <= 500; seq++) await commit(s, [{ op: 'done', seq }])
      await commit(s, [{ op: 'reset' }]) // one more turn: the check runs per batch
      expect(s.stats().fileBytes).to.be.lessThan(4096)
      expect(s.stats().liveBytes).to.equal(0)
      await s.close()
      expect(readdirSync(dir).filter((n) => n.endsWith('.log'))).to.have.length(1)
      const snap = await store(dir).open(META)
      expect(summary(snap)).to.deep.equal({ out: [], in: [], subs: [], next: 501 })
    })

    it('recovers from a crash in the middle of a compaction (temporary file, superseded segment)', async () => {
      const dir = tempDir()
      const s = store(dir)
      await s.open(META)
      await commit(s, [{ op: 'out', seq: 1, packet: pkt(1) }])
      await s.close()
      const current = journal(dir)
      // A superseded older segment and a half-written next one, as a crash would leave them.
      writeFileSync(join(dir, '00000000.log'), Buffer.from('old segment'))
      writeFileSync(join(dir, '00000002.log.tmp'), Buffer.from('half written'))
      const snap = await store(dir).open(META)
      expect(summary(snap).out).to.deep.equal([1])
      expect(snap.warnings).to.deep.equal([])
      expect(readdirSync(dir).filter((n) => n !== 'LOCK')).to.deep.equal([current.slice(dir.length + 1)])
    })
  })

  describe('the lock', () => {
    it('refuses a second open in this process while open', async () => {
      const dir = tempDir()
      await store(dir).open(META)
      const err = await store(dir).open(META).then(() => undefined, (e: unknown) => e)
      expect(err).to.be.instanceOf(StoreError).and.to.include({ reason: 'locked' })
    })

    it('refuses an open while another process holds the store, and takes a killed holder\'s lock over with a warning', async () => {
      const dir = tempDir()
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'hold', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
      teardown.defer(() => child.exitCode === null && child.kill('SIGKILL'))
      await waitForLine(child, /open\n/)
      const err = await store(dir).open(META).then(() => undefined, (e: unknown) => e)
      expect(err).to.be.instanceOf(StoreError).and.to.include({ reason: 'locked' })
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
      const snap = await store(dir).open({ clientId: 'child', protocolLevel: 4 })
      expect(snap.warnings.map((w) => w.code)).to.deep.equal(['stale-lock'])
    })

    it('makes another process fail to open while this one holds the store', async () => {
      const dir = tempDir()
      await store(dir).open({ clientId: 'child', protocolLevel: 4 })
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'hold', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
      teardown.defer(() => child.exitCode === null && child.kill('SIGKILL'))
      const line = await waitForLine(child, /(error \w+|open)\n/)
      expect(line).to.equal('error locked\n')
    })

    it('takes over a lock that holds this process\'s pid but not from this process (a restarted container)', async () => {
      const dir = tempDir()
      const first = store(dir)
      await first.open(META)
      await first.close()
      writeFileSync(join(dir, 'LOCK'), `${process.pid} 1\n`)
      const snap = await store(dir).open(META)
      expect(snap.warnings.map((w) => w.code)).to.deep.equal(['stale-lock'])
    })

    it('takes over a lock whose pid now belongs to another process (pid reuse), not one of a live owner', async () => {
      const dir = tempDir()
      const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' })
      teardown.defer(() => other.exitCode === null && other.kill('SIGKILL'))
      const pid = other.pid as number
      const started = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19]
      writeFileSync(join(dir, 'LOCK'), `${pid} ${started}\n`)
      const err = await store(dir).open(META).then(() => undefined, (e: unknown) => e)
      expect(err).to.be.instanceOf(StoreError).and.to.include({ reason: 'locked' })
      writeFileSync(join(dir, 'LOCK'), `${pid}\n`) // a lock without a start time: the pid decides
      const err2 = await store(dir).open(META).then(() => undefined, (e: unknown) => e)
      expect(err2).to.be.instanceOf(StoreError).and.to.include({ reason: 'locked' })
      writeFileSync(join(dir, 'LOCK'), `${pid} 1\n`) // that pid, but a process started at another time
      const snap = await store(dir).open(META)
      expect(snap.warnings.map((w) => w.code)).to.deep.equal(['stale-lock'])
    })

    it('releases the lock on close', async () => {
      const dir = tempDir()
      const s = store(dir)
      await s.open(META)
      await s.close()
      expect(readdirSync(dir)).to.not.include('LOCK')
      await store(dir).open(META)
    })
  })
})
