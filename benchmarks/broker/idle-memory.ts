/**
 * Memory per idle connection, measured precisely and taken apart (the `connections` scenario of
 * run.ts measures only RSS, which moves with the garbage collector): a broker in a child process
 * (`--expose-gc`), N MQTT 3.1.1 connections opened from this process (50 handshakes in flight) and
 * held idle for `--hold` ms (default 3000, as the `connections` scenario), then per connection:
 *
 * - `heap`: the child's V8 heap used after a full GC, after minus before (what the connections
 *   really keep); "before" and "after" are taken after 3 full GCs and V8's low-memory collection
 *   (the young generation back to its initial size) in every variant;
 * - `rss`: resident memory growth as the `connections` scenario reads it (no forced GC), and what
 *   it is made of: `new space` (the young generation the connect burst grew: committed, mostly
 *   garbage), `old space` committed, and the rest (`native`: sockets' libuv/kernel-facing structs,
 *   malloc'd read buffers, code);
 * - `rss after gc`: resident memory after those collections (the floor).
 *
 * `--bare` measures a plain Node TCP server that only reads (the floor a socket costs); `--lib DIR`
 * measures the broker of another checkout (its lib/); `--node-flags "..."` passes V8 flags to the
 * child (e.g. `--max-semi-space-size=1`); `--release N` sets the broker's `idleMemoryRelease` (0: off;
 * default: the broker's default, 1,000), the collection that gives back the young generation a
 * burst of connections grew once the broker is quiet (lib/broker/memory-release.ts).
 *
 *   node --import tsx benchmarks/broker/idle-memory.ts [--count 2000] [--hold 3000] [--bare]
 *     [--lib /work/base/lib] [--release 0] [--node-flags "--max-semi-space-size=1"]
 */
import { fork } from 'node:child_process'
import { getHeapSpaceStatistics } from 'node:v8'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'
import { Conn } from '../../lib/bench/conn.js'
import type * as Lib from '../../lib/index.js'

interface Heap { heapUsed: number; external: number; arrayBuffers: number; rss: number; newSpace: number; oldSpace: number }

if (process.argv[2] === '--child') {
  const mode = process.argv[3]!
  const gc = (globalThis as { gc?: () => void }).gc!
  let port: number
  let keep: unknown
  if (mode === 'bare') {
    const net = await import('node:net')
    const sockets = new Set<unknown>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('data', () => undefined)
      socket.once('data', () => socket.write(Buffer.from([0x20, 2, 0, 0])))
      socket.on('close', () => sockets.delete(socket))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as { port: number }).port
    keep = [server, sockets]
  } else {
    const lib = resolve(mode)
    const { Broker, MemoryBackend } = (await import(`${lib}/index.js`)) as typeof Lib
    const release = process.argv[4] === undefined ? {} : { idleMemoryRelease: Number(process.argv[4]) }
    const broker = new Broker({ backend: new MemoryBackend(), sysInterval: 0, maxEventLoopLag: 0, maxHeapUsed: 0, ...release })
    port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    keep = broker
  }
  const { Session } = await import('node:inspector')
  const inspector = new Session()
  inspector.connect()
  const heap = async (collect: boolean): Promise<Heap> => {
    if (collect) {
      for (let i = 0; i < 3; i++) gc()
      // V8's low-memory collection as well (what idleMemoryRelease asks for): the young generation
      // back to its initial size, for every variant alike, so that "before" holds no young
      // generation grown by the start and "rss after full GC" is the floor.
      await new Promise<void>((resolve, reject) => inspector.post('HeapProfiler.collectGarbage', (e) => (e === null ? resolve() : reject(e))))
    }
    const m = process.memoryUsage()
    const spaces = getHeapSpaceStatistics()
    const committed = (name: string): number => spaces.find((x) => x.space_name === name)?.physical_space_size ?? 0
    return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, newSpace: committed('new_space'), oldSpace: committed('old_space') }
  }
  process.on('message', (m) => { if (m === 'heap' || m === 'nogc') void heap(m === 'heap').then((h) => process.send!(h)) })
  process.send!({ port, keep: keep !== undefined })
} else {
  const args = process.argv.slice(2)
  const count = Number(args[args.indexOf('--count') + 1] ?? 2000) || 2000
  const hold = args.includes('--hold') ? Number(args[args.indexOf('--hold') + 1]) : 3000
  const mode = args.includes('--bare') ? 'bare' : args.includes('--lib') ? args[args.indexOf('--lib') + 1]! : resolve(fileURLToPath(import.meta.url), '../../../lib')
  const nodeFlags = args.includes('--node-flags') ? args[args.indexOf('--node-flags') + 1]!.split(/\s+/).filter(Boolean) : []
  const release = args.includes('--release') ? [String(Number(args[args.indexOf('--release') + 1]))] : []
  const child = fork(fileURLToPath(import.meta.url), ['--child', mode, ...release], { execArgv: ['--import', 'tsx', '--expose-gc', ...nodeFlags] })
  const next = (): Promise<unknown> => new Promise((r) => child.once('message', r))
  const { port } = (await next()) as { port: number }
  const ask = async (what: 'heap' | 'nogc' = 'heap'): Promise<Heap> => { const p = next(); child.send(what); return (await p) as Heap }
  // Warm up: a few connections opened and closed, so that lazily loaded code is in before "before".
  for (let i = 0; i < 20; i++) (await Conn.open({ host: '127.0.0.1', port, transport: 'tcp' }, `warm-${i}`, 60)).destroy()
  await new Promise((r) => setTimeout(r, 200))
  const before = await ask()
  const conns: Conn[] = []
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, k) => Conn.open({ host: '127.0.0.1', port, transport: 'tcp' }, `idle-${i + k}`, 60)))
    conns.push(...batch)
  }
  // Held like the `connections` scenario holds them: the broker's wheel (1 s) gives back the state of connections idle for 1 s.
  await new Promise((r) => setTimeout(r, hold))
  const held = await ask('nogc')
  const after = await ask()
  const per = (a: Heap, k: keyof Heap): number => Math.round((a[k] - before[k]) / count)
  const kb = (k: keyof Heap): string => `${per(held, k)}`
  const native = per(held, 'rss') - per(held, 'newSpace') - per(held, 'oldSpace')
  const variant = [...nodeFlags, ...release.map((n) => `idleMemoryRelease ${n}`)].join(' ')
  console.log(`${mode === 'bare' ? 'bare node socket' : mode}${variant !== '' ? ` (${variant})` : ''}: ${count} idle connections, per connection:`)
  console.log(`  heap after full GC ${per(after, 'heapUsed')} B, external ${per(after, 'external')} B (arrayBuffers ${per(after, 'arrayBuffers')} B)`)
  console.log(`  rss ${kb('rss')} B = new space ${kb('newSpace')} B + old space ${kb('oldSpace')} B + native and the rest ${native} B; rss after full GC ${per(after, 'rss')} B`)
  for (const c of conns) c.destroy()
  child.kill()
  process.exit(0)
}
