/**
 * Benchmark targets: each broker runs as its own child process on a free loopback port, started
 * through `bash -c 'ulimit -n 20000; exec ...'` so that the child's pid is the broker's pid (for
 * /proc readings) and it may hold 10,000+ sockets. Every child is tracked so that `stopAll` can
 * kill them by pid at the end, on error and on SIGINT.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, dirname } from 'node:path'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

/**
 * Names of the known targets. `node-floor` and `node-floor-onread` are not brokers but the least a
 * Node.js broker has to do (servers/floor-forwarder.ts); they run only when named in `--targets`.
 */
export const TARGET_NAMES = ['ours', 'node-floor', 'node-floor-onread', 'aedes', 'mosquitto'] as const

/** The targets of a run that names none: the brokers. */
export const DEFAULT_TARGETS: readonly TargetName[] = ['ours', 'aedes', 'mosquitto']

/** A target name. */
export type TargetName = typeof TARGET_NAMES[number]

/** A broker process that is listening. */
export interface RunningBroker {
  name: TargetName
  pid: number
  port: number
  /** Stops the process (SIGTERM, then SIGKILL after 3 s) and resolves once it exited. */
  stop (): Promise<void>
  /** True while the process runs. */
  alive (): boolean
  /** The broker's recent stdout/stderr (last 8 KiB), cleared by the call. */
  takeOutput (): string
}

/** How to start the targets. */
export interface TargetOptions {
  transport: 'tcp' | 'ws'
  /** Extra node flags for the Node.js brokers (e.g. `--max-semi-space-size=1`). */
  nodeFlags: string[]
  /** Open-files limit set in the broker's shell. */
  nofile: number
  /** Another server script for `ours` (same arguments as servers/ours.ts), e.g. a variant. */
  oursScript?: string
  /**
   * Run the Node.js servers' TypeScript through tsx (`node --import tsx`) instead of a plain-JS
   * bundle. tsx keeps a loader thread alive: about +35 MB of fixed RSS per broker.
   */
  useTsx?: boolean
  /** A command the broker runs under, e.g. `['valgrind', '--tool=callgrind', ...]` (instructions.ts). */
  wrapper?: string[]
  /** How long the broker may take to listen (default 30 s; a broker under valgrind needs minutes). */
  startTimeoutMs?: number
}

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = join(HERE, '../..')
const live = new Set<ChildProcess>()
const tempDirs = new Set<string>()

/** Why a target cannot run here, or undefined if it can. */
export function unavailable (name: TargetName, o?: TargetOptions): string | undefined {
  if (name === 'mosquitto') {
    const r = spawnSync('bash', ['-c', 'command -v mosquitto'], { encoding: 'utf8' })
    return r.status === 0 ? undefined : 'mosquitto is not on the PATH'
  }
  if (name === 'ours') {
    if (o?.oursScript !== undefined) return undefined
    return existsSync(join(ROOT, 'lib/index.ts')) ? undefined : 'lib/index.ts does not exist yet'
  }
  return undefined
}

/** Version string of a target (for the results file). */
export function version (name: TargetName): string {
  if (name === 'mosquitto') {
    const r = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' })
    return /mosquitto version (\S+)/.exec(r.stdout + r.stderr)?.[1] ?? 'unknown'
  }
  if (name === 'aedes') {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules/aedes/package.json'), 'utf8')) as { version: string }).version
    } catch {
      return 'unknown'
    }
  }
  return 'working tree'
}

/** A free TCP port on 127.0.0.1 (free when asked; the broker binds it right after). */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

/** Starts one target and resolves once its port accepts connections. */
export async function startTarget (name: TargetName, o: TargetOptions): Promise<RunningBroker> {
  const port = await freePort()
  let argv: string[]
  let cleanup = (): void => {}
  if (name === 'mosquitto') {
    const dir = mkdtempSync(join(tmpdir(), 'bench-mosquitto-'))
    const conf = join(dir, 'mosquitto.conf')
    writeFileSync(conf, [
      `listener ${port} 127.0.0.1`,
      ...(o.transport === 'ws' ? ['protocol websockets'] : []),
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 1000000',
      'log_dest none',
      // Under a wrapper (valgrind) the broker must stay the user that started it: callgrind_control
      // talks to it through pipes of that user. Mosquitto started as root drops to `mosquitto`.
      ...(o.wrapper !== undefined && process.getuid?.() === 0 ? ['user root'] : []),
      ''
    ].join('\n'))
    argv = ['mosquitto', '-c', conf]
    tempDirs.add(dir)
    cleanup = () => { rmSync(dir, { recursive: true, force: true }); tempDirs.delete(dir) }
  } else {
    const script = name === 'ours' && o.oursScript !== undefined ? o.oursScript : join(HERE, 'servers', `${name}.ts`)
    const bundle = o.useTsx === true ? undefined : await bundled(script)
    argv = [process.execPath, ...o.nodeFlags, ...(bundle !== undefined ? [bundle] : ['--import', 'tsx', script]),
      '--port', String(port), '--transport', o.transport]
  }
  const child = spawn('bash', ['-c', `ulimit -n ${o.nofile} && exec "$@"`, 'bash', ...(o.wrapper ?? []), ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT
  })
  live.add(child)
  let output = ''
  const keep = (b: Buffer): void => { output = (output + b.toString()).slice(-8192) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => { live.delete(child); cleanup(); resolve() }))
  let gone = false
  void exited.then(() => { gone = true })

  const started = Date.now()
  while (!(await canConnect(port))) {
    if (gone) throw new Error(`${name} exited while starting:\n${output}`)
    const limit = o.startTimeoutMs ?? 30_000
    if (Date.now() - started > limit) {
      child.kill('SIGKILL')
      throw new Error(`${name} did not listen on ${port} within ${limit / 1000} s:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    name,
    pid: child.pid!,
    port,
    alive: () => !gone,
    takeOutput: () => { const o = output; output = ''; return o },
    stop: async () => {
      if (gone) return
      child.kill('SIGTERM')
      const t = setTimeout(() => { if (!gone) child.kill('SIGKILL') }, 3000)
      await exited
      clearTimeout(t)
    }
  }
}

const bundles = new Map<string, Promise<string | undefined>>()
const bundleFiles = new Set<string>()

/**
 * Bundles a server script and the repository code it imports into one plain ES module (packages
 * stay external) with esbuild, which tsx brings along, so that the broker runs as compiled
 * JavaScript does in production, without a TypeScript loader in the process. Undefined if esbuild
 * is not available (the caller then falls back to tsx). Built once per runner process.
 */
function bundled (script: string): Promise<string | undefined> {
  let p = bundles.get(script)
  if (p === undefined) {
    p = (async () => {
      try {
        const esbuild = await import('esbuild')
        // In this checkout (not under node_modules, which worktrees may share) and per runner
        // process: two runners at once must never run each other's bundle.
        const out = join(ROOT, '.tmp/bench-broker', `${basename(script).replace(/\.[mc]?ts$/, '')}-${process.pid}-${bundles.size}.mjs`)
        bundleFiles.add(out)
        await esbuild.build({ entryPoints: [script], outfile: out, bundle: true, platform: 'node', format: 'esm',
          target: 'node20', packages: 'external', logLevel: 'silent' })
        return out
      } catch (err) {
        process.stderr.write(`could not bundle ${script} (${err instanceof Error ? err.message : String(err)}); using tsx\n`)
        return undefined
      }
    })()
    bundles.set(script, p)
  }
  return p
}

function canConnect (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** Kills every child still running (SIGKILL, by pid) and removes generated configs. Synchronous: safe in exit handlers. */
export function killAll (): void {
  for (const c of live) {
    if (c.pid !== undefined) {
      try { process.kill(c.pid, 'SIGKILL') } catch { /* already gone */ }
    }
  }
  live.clear()
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
  tempDirs.clear()
  for (const f of bundleFiles) rmSync(f, { force: true })
  bundleFiles.clear()
}
