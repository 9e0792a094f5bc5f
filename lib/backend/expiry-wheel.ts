/**
 * A timer wheel for many deadlines checked by one periodic sweep: items are kept in buckets of
 * `granularity` ms, and a sweep only looks at the buckets that can be due (a min-heap of bucket
 * numbers), so its cost follows what expires, not how many items wait. Removal is lazy: the sweep
 * asks the owner whether each item it meets is still waiting.
 *
 * Internal to the memory backend (away sessions and their Session Expiry Interval).
 */
export class ExpiryWheel<T> {
  readonly granularity: number
  readonly #buckets = new Map<number, { item: T; at: number }[]>()
  /** Bucket numbers, a binary min-heap. */
  readonly #heap: number[] = []
  #size = 0

  constructor(granularity: number) {
    this.granularity = Math.max(1, granularity)
  }

  /** Entries held (stale ones included until a sweep meets them). */
  get size(): number {
    return this.#size
  }

  /** Keep `item` until `at` (ms since the epoch). */
  add(item: T, at: number): void {
    const key = Math.floor(at / this.granularity)
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = []
      this.#buckets.set(key, bucket)
      this.#push(key)
    }
    bucket.push({ item, at })
    this.#size++
  }

  /**
   * Visit every entry whose bucket can be due at `now`. `visit(item, at)` answers 'keep' for an
   * entry not yet due (it stays), 'drop' for one that expired or no longer waits (it goes).
   */
  sweep(now: number, visit: (item: T, at: number) => 'keep' | 'drop'): void {
    const due = Math.floor(now / this.granularity)
    const kept: number[] = []
    while (this.#heap.length > 0 && this.#heap[0]! <= due) {
      const key = this.#pop()
      const bucket = this.#buckets.get(key)
      if (bucket === undefined) continue
      const left = bucket.filter((entry) => visit(entry.item, entry.at) === 'keep')
      this.#size -= bucket.length - left.length
      if (left.length === 0) this.#buckets.delete(key)
      else {
        this.#buckets.set(key, left)
        kept.push(key)
      }
    }
    for (const key of kept) this.#push(key)
  }

  /** Forget everything. */
  clear(): void {
    this.#buckets.clear()
    this.#heap.length = 0
    this.#size = 0
  }

  #push(key: number): void {
    const heap = this.#heap
    heap.push(key)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]! <= key) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = key
  }

  #pop(): number {
    const heap = this.#heap
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= heap.length) break
        const r = l + 1
        const c = r < heap.length && heap[r]! < heap[l]! ? r : l
        if (heap[c]! >= last) break
        heap[i] = heap[c]!
        i = c
      }
      heap[i] = last
    }
    return top
  }
}
