/** Run the commands (bin/mqttc.ts, bin/mqtt-bench.ts) as real processes, with a watchdog. */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Teardown } from '../helpers/teardown.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const MQTTC = fileURLToPath(new URL('../../bin/mqttc.ts', import.meta.url))
export const BENCH = fileURLToPath(new URL('../../bin/mqtt-bench.ts', import.meta.url))

/** A running command. */
export interface Cli {
  child: ChildProcess
  stdout: Buffer[]
  stderr: string[]
  /** Resolves with the exit status (128 + n when killed by signal n) and the collected output. */
  result: Promise<CliResult>
  /** Resolves when stderr has printed a line matching `pattern`. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /** Resolves once stdout has at least `bytes` bytes. */
  waitForStdout(bytes: number, timeoutMs?: number): Promise<void>
}

export interface CliResult {
  code: number
  stdout: Buffer
  stderr: string
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 }

/** Start `script args` with node + tsx; killed (by pid) in teardown if still running. */
export function startCli(teardown: Teardown, script: string, args: string[], options: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore' } = {}): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: [options.stdin ?? 'pipe', 'pipe', 'pipe']
  })
  teardown.defer(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const stdout: Buffer[] = []
  const stderr: string[] = []
  const listeners = new Set<() => void>()
  const poke = (): void => {
    for (const listener of listeners) listener()
  }
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout.push(chunk)
    poke()
  })
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString())
    poke()
  })
  const result = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => {
      poke()
      resolve({ code: code ?? 128 + (SIGNALS[signal ?? ''] ?? 0), stdout: Buffer.concat(stdout), stderr: stderr.join('') })
    })
  })
  const waitFor = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener)
        reject(new Error(`timed out waiting for ${what}; stderr: ${stderr.join('')}`))
      }, timeoutMs)
      const listener = (): void => {
        const found = check()
        if (found !== undefined) {
          clearTimeout(timer)
          listeners.delete(listener)
          resolve(found)
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(timer)
          listeners.delete(listener)
          reject(new Error(`exited (${child.exitCode ?? child.signalCode}) before ${what}; stderr: ${stderr.join('')}`))
        }
      }
      listeners.add(listener)
      listener()
    })
  return {
    child,
    stdout,
    stderr,
    result,
    waitForStderr: (pattern, timeoutMs = 20_000) => waitFor(() => stderr.join('').match(pattern) ?? undefined, timeoutMs, `stderr ${pattern}`),
    waitForStdout: (bytes, timeoutMs = 20_000) => waitFor(() => (Buffer.concat(stdout).length >= bytes ? true : undefined), timeoutMs, `${bytes} bytes on stdout`).then(() => undefined)
  }
}

/** Run to the end (stdin: the given bytes, or closed at once); fails the test after `timeoutMs`. */
export async function runCli(teardown: Teardown, script: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: Buffer | string; timeoutMs?: number } = {}): Promise<CliResult> {
  const cli = startCli(teardown, script, args, { env: options.env })
  cli.child.stdin!.on('error', () => undefined)
  cli.child.stdin!.end(options.input ?? '')
  const timeoutMs = options.timeoutMs ?? 30_000
  let timer: NodeJS.Timeout | undefined
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${args.join(' ')}: no exit within ${timeoutMs} ms; stderr: ${cli.stderr.join('')}`)), timeoutMs)
  })
  try {
    return await Promise.race([cli.result, watchdog])
  } finally {
    clearTimeout(timer)
  }
}

/** Run mqttc. */
export function mqttc(teardown: Teardown, args: string[], options?: Parameters<typeof runCli>[3]): Promise<CliResult> {
  return runCli(teardown, MQTTC, args, options)
}
