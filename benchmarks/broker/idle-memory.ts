/**
 * Heap per idle connection, measured precisely (the `connections` scenario of run.ts measures RSS,
 * which moves with the garbage collector): a broker in a child process (`--expose-gc`), N MQTT
 * 3.1.1 connections opened from this process and held idle, the child's V8 heap after a full GC
 * before and after, per connection. `--bare` measures a plain Node TCP server that only reads
 * (the floor a socket costs); `--lib DIR` measures the broker of another checkout (its lib/).
 *
 *   node --import tsx benchmarks/broker/idle-memory.ts [--count 2000] [--bare] [--lib /work/base/lib]
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'
import { Conn } from '../../lib/bench/conn.js'
import type * as Lib from '../../lib/index.js'

interface Heap { heapUsed: number; external: number; arrayBuffers: number }

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
    const broker = new Broker({ backend: new MemoryBackend(), sysInterval: 0, maxEventLoopLag: 0, maxHeapUsed: 0 })
    port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    keep = broker
  }
  const heap = (): Heap => {
    for (let i = 0; i < 3; i++) gc()
    const m = process.memoryUsage()
    return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
  }
  process.on('message', (m) => { if (m === 'heap') process.send!(heap()) })
  process.send!({ port, keep: keep !== undefined })
} else {
  const args = process.argv.slice(2)
  const count = Number(args[args.indexOf('--count') + 1] ?? 2000) || 2000
  const mode = args.includes('--bare') ? 'bare' : args.includes('--lib') ? args[args.indexOf('--lib') + 1]! : resolve(fileURLToPath(import.meta.url), '../../../lib')
  const child = fork(fileURLToPath(import.meta.url), ['--child', mode], { execArgv: ['--import', 'tsx', '--expose-gc'] })
  const next = (): Promise<unknown> => new Promise((r) => child.once('message', r))
  const { port } = (await next()) as { port: number }
  const ask = async (): Promise<Heap> => { const p = next(); child.send('heap'); return (await p) as Heap }
  // Warm up: a few connections opened and closed, so that lazily loaded code is in before "before".
  for (let i = 0; i < 20; i++) (await Conn.open({ host: '127.0.0.1', port, transport: 'tcp' }, `warm-${i}`, 60)).destroy()
  await new Promise((r) => setTimeout(r, 200))
  const before = await ask()
  const conns: Conn[] = []
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, k) => Conn.open({ host: '127.0.0.1', port, transport: 'tcp' }, `idle-${i + k}`, 60)))
    conns.push(...batch)
  }
  await new Promise((r) => setTimeout(r, 500))
  const after = await ask()
  const per = (k: keyof Heap): number => Math.round((after[k] - before[k]) / count)
  console.log(`${mode === 'bare' ? 'bare node socket' : mode}: ${count} idle connections: heap ${per('heapUsed')} B/conn, external ${per('external')} B/conn (arrayBuffers ${per('arrayBuffers')})`)
  for (const c of conns) c.destroy()
  child.kill()
  process.exit(0)
}
