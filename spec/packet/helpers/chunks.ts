/**
 * Ways of cutting a byte string into chunks, to check that the streaming decoder does not care
 * where a packet is split. Randomness is seeded so a failing split can be reproduced.
 */

/** A seeded pseudo-random generator (mulberry32): returns floats in [0, 1). */
export type Random = () => number

/** Creates a mulberry32 generator from a 32-bit seed. Same seed, same sequence. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A stable 32-bit seed derived from a string (FNV-1a), e.g. from a fixture name. */
export function seedFrom(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/** The whole buffer as one chunk. */
export function whole(bytes: Buffer): Buffer[] {
  return [bytes]
}

/** One chunk per byte. Chunks are views of `bytes`. */
export function byteByByte(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = []
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1))
  return chunks
}

/**
 * Cuts `bytes` at 1 to `maxCuts` random distinct places (fewer if the buffer is short). Chunks are
 * copies, as a socket would hand them over. A buffer shorter than 2 bytes gives one chunk.
 */
export function randomSplit(bytes: Buffer, random: Random, maxCuts = 8): Buffer[] {
  if (bytes.length < 2) return [Buffer.from(bytes)]
  const wanted = 1 + Math.floor(random() * Math.min(maxCuts, bytes.length - 1))
  const cuts = new Set<number>()
  while (cuts.size < wanted) cuts.add(1 + Math.floor(random() * (bytes.length - 1)))
  const sorted = [...cuts].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let start = 0
  for (const cut of sorted) {
    chunks.push(Buffer.from(bytes.subarray(start, cut)))
    start = cut
  }
  chunks.push(Buffer.from(bytes.subarray(start)))
  return chunks
}

/** `count` independent random splits of `bytes` from one seeded generator. */
export function randomSplits(bytes: Buffer, seed: number, count = 20): Buffer[][] {
  const random = seededRandom(seed)
  const splits: Buffer[][] = []
  for (let i = 0; i < count; i++) splits.push(randomSplit(bytes, random))
  return splits
}
