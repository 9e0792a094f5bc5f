import { Decoder } from '../../../lib/packet/index.js'
import type { DecoderOptions, MqttError, Packet } from '../../../lib/packet/index.js'

/** What feeding chunks to one decoder produced. */
export interface FeedResult {
  packets: Packet[]
  /** The first error a push returned, if any. */
  error: MqttError | undefined
  /** Index of the chunk whose push returned the error (-1 when none did). */
  errorChunk: number
  decoder: Decoder
}

/**
 * Pushes `chunks` in order into a fresh Decoder, stopping at the first push that returns an error.
 * A push that throws fails the test: the decoder must never throw.
 */
export function feed(chunks: readonly Buffer[], options?: DecoderOptions): FeedResult {
  const packets: Packet[] = []
  const decoder = new Decoder((packet) => packets.push(packet), options)
  for (let i = 0; i < chunks.length; i++) {
    const error = decoder.push(chunks[i] as Buffer)
    if (error !== undefined) return { packets, error, errorChunk: i, decoder }
  }
  return { packets, error: undefined, errorChunk: -1, decoder }
}
