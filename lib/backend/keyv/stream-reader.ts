import type { RedisClientLike } from './redis-link.js'
import { BINARY } from './redis-link.js'

/** One stream entry: its id and fields (values as Buffers). */
export interface StreamEntry {
  stream: string
  id: string
  fields: Map<string, Buffer>
}

type XReadReply = [Buffer, [Buffer, Buffer[]][]][] | null

/**
 * Reads several Redis streams with `XREAD BLOCK` on its own connection (a `duplicate()` of the
 * command client: a blocking read on the shared connection would stall every other command).
 * It resumes from the last id it handed out, so a reconnect loses nothing that is still in the
 * streams. `onEntry` is called in stream order; its exceptions are reported, never thrown.
 */
export class StreamReader {
  readonly #client: RedisClientLike
  readonly #ids: Map<string, string>
  readonly #onEntry: (entry: StreamEntry) => void
  readonly #onError: (error: unknown) => void
  readonly #blockMs: number
  #running = false
  #loop: Promise<void> | undefined = undefined

  constructor(
    client: RedisClientLike,
    streams: [key: string, fromId: string][],
    onEntry: (entry: StreamEntry) => void,
    onError: (error: unknown) => void,
    blockMs = 1000
  ) {
    this.#client = client
    this.#ids = new Map(streams)
    this.#onEntry = onEntry
    this.#onError = onError
    this.#blockMs = blockMs
  }

  /** Starts the read loop. */
  start(): void {
    if (this.#running) return
    this.#running = true
    this.#loop = this.#run()
  }

  /** Stops the loop and closes the connection. */
  async stop(): Promise<void> {
    this.#running = false
    try {
      this.#client.destroy()
    } catch {
      // already closed
    }
    await this.#loop
  }

  async #run(): Promise<void> {
    let backoff = 50
    while (this.#running) {
      const keys = Array.from(this.#ids.keys())
      const ids = keys.map((k) => this.#ids.get(k) as string)
      let reply: XReadReply
      try {
        reply = await this.#client.sendCommand<XReadReply>(
          ['XREAD', 'COUNT', '500', 'BLOCK', String(this.#blockMs), 'STREAMS', ...keys, ...ids],
          { typeMapping: BINARY }
        )
        backoff = 50
      } catch (error) {
        if (!this.#running) return
        this.#onError(error)
        await new Promise((resolve) => setTimeout(resolve, backoff))
        backoff = Math.min(backoff * 2, 1000)
        continue
      }
      if (reply === null || !this.#running) continue
      for (const [name, entries] of reply) {
        const stream = name.toString()
        for (const [rawId, flat] of entries) {
          const id = rawId.toString()
          this.#ids.set(stream, id)
          const fields = new Map<string, Buffer>()
          for (let i = 0; i + 1 < flat.length; i += 2) fields.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer)
          try {
            this.#onEntry({ stream, id, fields })
          } catch (error) {
            this.#onError(error)
          }
        }
      }
    }
  }
}
