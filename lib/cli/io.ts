/** Small I/O helpers of the commands: stderr logging, stdin reading, a password prompt, a journal counter. */
import { openSync } from 'node:fs'
import { ReadStream, WriteStream } from 'node:tty'
import type { ClientStore, StoreRecord, StoreSnapshot, StoreMeta } from '../client/index.js'

/** The process streams and environment a command runs with (specs give their own). */
export interface CommandIo {
  stdin: NodeJS.ReadableStream
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  env: NodeJS.ProcessEnv
  /** Register a signal handler; returns the remover. */
  onSignal(signal: 'SIGINT' | 'SIGTERM', handler: () => void): () => void
}

/** The real process. */
export function processIo(): CommandIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onSignal(signal, handler) {
      process.on(signal, handler)
      return () => process.off(signal, handler)
    }
  }
}

/** Read the whole stream, refusing more than `max` bytes. */
export async function readAll(stream: NodeJS.ReadableStream, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += bytes.length
    if (size > max) throw new Error(`standard input exceeds ${max} bytes`)
    chunks.push(bytes)
  }
  return Buffer.concat(chunks)
}

/**
 * The lines of a stream, as mosquitto_pub -l splits them: at LF only (a CR stays part of the
 * line), an empty line is an empty message, a final line without LF is a line too.
 */
export async function* readLines(stream: NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0)
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    let bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (rest.length > 0) bytes = Buffer.concat([rest, bytes])
    let start = 0
    for (let at = bytes.indexOf(0x0a); at >= 0; at = bytes.indexOf(0x0a, start)) {
      yield bytes.subarray(start, at)
      start = at + 1
    }
    rest = Buffer.from(bytes.subarray(start))
  }
  if (rest.length > 0) yield rest
}

/** Ask for a password on the terminal (/dev/tty), without echo. */
export function promptPassword(prompt = 'Password: '): Promise<string> {
  return new Promise((resolve, reject) => {
    let input: ReadStream
    let output: WriteStream
    try {
      input = new ReadStream(openSync('/dev/tty', 'r'))
      output = new WriteStream(openSync('/dev/tty', 'w'))
    } catch (error) {
      reject(new Error(`cannot prompt for a password: no terminal (${(error as Error).message}); use -pass FILE`))
      return
    }
    output.write(prompt)
    input.setRawMode(true)
    let text = ''
    const done = (error?: Error): void => {
      input.setRawMode(false)
      input.destroy()
      output.end('\n')
      if (error === undefined) resolve(text)
      else reject(error)
    }
    input.on('data', (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\x03') return done(new Error('password prompt interrupted'))
        if (ch === '\x7f' || ch === '\b') text = text.slice(0, -1)
        else text += ch
      }
    })
  })
}

/**
 * A `ClientStore` that tells how many outbound messages became durable (`mqttc -l --session`
 * reports "journaled N" with -verbose: a line counted there survives a crash of the process).
 */
export class CountingStore implements ClientStore {
  journaled = 0
  constructor(private readonly inner: ClientStore, private readonly onJournaled: (total: number) => void) {}

  open(meta: StoreMeta): Promise<StoreSnapshot> {
    return this.inner.open(meta)
  }

  commit(records: readonly StoreRecord[]): void | Promise<void> {
    const out = records.reduce((n, r) => (r.op === 'out' ? n + 1 : n), 0)
    const result = this.inner.commit(records)
    if (out === 0) return result
    const count = (): void => {
      this.journaled += out
      this.onJournaled(this.journaled)
    }
    if (result === undefined) {
      count()
      return undefined
    }
    return result.then(count)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
