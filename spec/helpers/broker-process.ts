/**
 * The `mqtt-broker` command as a child process, for specs: start it with arguments (and
 * environment), wait for a line of its output, and kill it in teardown if it is still running.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Teardown } from './teardown.js'

/** The command's source (run through tsx). `MQTT_BROKER_BIN` may point to another version. */
export const BIN = process.env.MQTT_BROKER_BIN ?? fileURLToPath(new URL('../../bin/mqtt-broker.ts', import.meta.url))

/** A running (or finished) `mqtt-broker`. */
export interface BrokerProcess {
  child: ChildProcess
  stdout: string
  stderr: string
  /** Resolves with the exit code (null when killed by a signal). */
  exit: Promise<number | null>
}

/** Starts `mqtt-broker args…`; `teardown` kills it (SIGKILL) after the test if it still runs. */
export function startBroker(args: string[], options: { teardown?: Teardown; env?: NodeJS.ProcessEnv; cwd?: string } = {}): BrokerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
    cwd: options.cwd
  })
  const run: BrokerProcess = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  }
  child.stdout!.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()))
  options.teardown?.defer(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return run
}

/**
 * Waits until `pattern` matches the process's standard output (or `stream`), polling; rejects with
 * the output so far after `timeout` ms or when the process exited without it.
 */
export async function waitForOutput(run: BrokerProcess, pattern: RegExp, timeout = 15000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeout
  while (Date.now() < deadline) {
    const match = run[stream].match(pattern)
    if (match !== null) return match
    if (run.child.exitCode !== null || run.child.signalCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`no ${String(pattern)} in output:\n${run.stdout}\n${run.stderr}`)
}

/** The bound `kind://host:port` of every listener, from the `listening on` lines, by kind in order. */
export async function listeningOn(run: BrokerProcess, count: number, timeout = 15000): Promise<string[]> {
  const pattern = /mqtt-broker listening on (\S+)/g
  const deadline = Date.now() + timeout
  while (Date.now() < deadline) {
    const found = [...run.stdout.matchAll(pattern)].map((m) => m[1]!)
    if (found.length >= count) return found
    if (run.child.exitCode !== null || run.child.signalCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`fewer than ${count} listeners in output:\n${run.stdout}\n${run.stderr}`)
}

/** The port of a `kind://host:port[/path]` URL. */
export function portOf(url: string): number {
  const match = /:(\d+)(\/|$)/.exec(url)
  if (match === null) throw new Error(`no port in ${url}`)
  return Number(match[1])
}
