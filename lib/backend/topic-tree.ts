/**
 * Tries over topic levels: `TopicTree` finds the subscriptions that match a published topic (one
 * walk per message), `RetainedTree` finds the retained messages that match a new subscription.
 *
 * Both walk with an explicit stack instead of recursion: a topic may have 32,768 levels
 * (`a/a/.../a` in 65,535 bytes) and a recursive walk that deep would overflow the call stack.
 * Neither tree validates its input: store valid filters (see `checkTopicFilter`) and topic names.
 */

import { FilterNode, INDEX_THRESHOLD } from './filter-node.js'

export { RetainedTree } from './retained-tree.js'

const DOLLAR = 0x24 // '$'

/** The matches of one topic, as parallel arrays (a snapshot: later changes replace, never edit). */
interface CachedMatch<T> {
  values: T[]
  keys: string[]
  filters: string[]
}

/** Options of a `TopicTree`. */
export interface TopicTreeOptions {
  /**
   * How many topics' match results to keep (default 4096; 0 turns the cache off). Publishers mostly
   * repeat their topics, so a hit replaces the walk (and the topic split) with one Map lookup. Any
   * add or remove empties the cache; when it is full it is emptied and refilled.
   */
  cacheSize?: number
  /**
   * Bytes the cache may hold, counting each topic (2 bytes a character) and its matches (default
   * 4 MiB): memory proportional to what is cached, however long the topics. Topics longer than
   * 1,024 characters are never cached (walked each time).
   */
  cacheBytes?: number
}

/** Topics longer than this are not cached: a long transient topic must not pin memory. */
const MAX_CACHED_TOPIC = 1024

/** What a cached entry is counted as, besides its topic: the Map entry and arrays, and 3 slots per match. */
const ENTRY_OVERHEAD = 160
const MATCH_COST = 24

/**
 * Subscriptions by topic filter: values stored under (filter, key), where the key is, for example,
 * a client id or a shared subscription's group member, and matched against published topic names.
 * The tree knows nothing of `$share/`: a backend stores a shared subscription under its inner filter.
 *
 * `match` may be re-entered from its callback (a delivery that publishes a will), and the callback
 * may add and remove entries: an ongoing walk then sees every entry that was stored when the walk
 * reached its node and not removed before (removing the entry being visited skips no other).
 */
export class TopicTree<T> {
  #root = new FilterNode<T>()
  #size = 0
  readonly #cache = new Map<string, CachedMatch<T>>()
  readonly #cacheSize: number
  readonly #cacheLimit: number
  #cacheBytes = 0
  #target: CachedMatch<T> | undefined = undefined
  readonly #collect = (value: T, key: string, filter: string): void => {
    const target = this.#target as CachedMatch<T>
    target.values.push(value)
    target.keys.push(key)
    target.filters.push(filter)
  }

  constructor(options: TopicTreeOptions = {}) {
    this.#cacheSize = options.cacheSize ?? 4096
    this.#cacheLimit = options.cacheBytes ?? 4 * 1024 * 1024
  }

  /** Bytes the topic-match cache is counted as holding (see `TopicTreeOptions.cacheBytes`). */
  get cacheBytes(): number {
    return this.#cacheBytes
  }

  /** Empty the match cache. */
  #clearCache(): void {
    this.#cache.clear()
    this.#cacheBytes = 0
  }
  /** The explicit walk stack, shared by nested `match` calls (each works above the caller's top). */
  #stackNodes: (FilterNode<T> | undefined)[] = []
  #stackLevels: number[] = []
  #top = 0
  /** Number of `match` calls in progress: while positive, stored arrays are copied, not mutated. */
  #matching = 0

  /** The number of stored (filter, key) entries. */
  get size(): number {
    return this.#size
  }

  /** Adds or replaces the value stored under (filter, key). Returns true if the entry is new. */
  add(filter: string, key: string, value: T): boolean {
    if (this.#cache.size > 0) this.#clearCache()
    const levels = filter.split('/')
    let node = this.#root
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as string
      node = node.child(level) ?? node.addChild(level)
    }
    const at = node.indexOf(key)
    if (at >= 0) {
      ;(node.values as T[])[at] = value
      return false
    }
    if (node.keys === undefined) {
      node.keys = [key]
      node.values = [value]
      node.filter = filter
    } else {
      if (this.#matching > 0) this.#copyArrays(node)
      const keys = node.keys
      keys.push(key)
      ;(node.values as T[]).push(value)
      if (node.index !== undefined) node.index.set(key, keys.length - 1)
      else if (keys.length > INDEX_THRESHOLD) {
        node.index = new Map()
        for (let i = 0; i < keys.length; i++) node.index.set(keys[i] as string, i)
      }
    }
    this.#size++
    return true
  }

  /** Removes (filter, key) and prunes the nodes left empty. Returns true if the entry existed. */
  remove(filter: string, key: string): boolean {
    const levels = filter.split('/')
    const path: FilterNode<T>[] = [this.#root]
    let node = this.#root
    for (let i = 0; i < levels.length; i++) {
      const next = node.child(levels[i] as string)
      if (next === undefined) return false
      node = next
      path.push(node)
    }
    const at = node.indexOf(key)
    if (at < 0) return false
    if (this.#matching > 0) this.#copyArrays(node)
    const keys = node.keys as string[]
    const values = node.values as T[]
    const last = keys.length - 1
    if (last === 0) {
      node.keys = undefined
      node.values = undefined
      node.index = undefined
    } else {
      // Swap-remove: order within a node is not part of the contract.
      if (at !== last) {
        keys[at] = keys[last] as string
        values[at] = values[last] as T
        node.index?.set(keys[at] as string, at)
      }
      keys.pop()
      values.pop()
      node.index?.delete(key)
    }
    this.#size--
    if (this.#cache.size > 0) this.#clearCache()
    for (let i = levels.length; i > 0 && (path[i] as FilterNode<T>).isEmpty(); i--) {
      ;(path[i - 1] as FilterNode<T>).removeChild(levels[i - 1] as string)
    }
    return true
  }

  /** The value stored under (filter, key), if any. */
  get(filter: string, key: string): T | undefined {
    const node = this.#find(filter)
    if (node === undefined) return undefined
    const at = node.indexOf(key)
    return at < 0 ? undefined : (node.values as T[])[at]
  }

  /** True if a value is stored under (filter, key). */
  has(filter: string, key: string): boolean {
    const node = this.#find(filter)
    return node !== undefined && node.indexOf(key) >= 0
  }

  /**
   * The number of trie nodes below the root (diagnostics, O(nodes)): removing every entry brings it
   * back to 0, because `remove` prunes the nodes it leaves empty.
   */
  get nodeCount(): number {
    let count = 0
    const stack: FilterNode<T>[] = [this.#root]
    while (stack.length > 0) {
      const node = stack.pop() as FilterNode<T>
      if (node.plus !== undefined) stack.push(node.plus)
      if (node.hash !== undefined) stack.push(node.hash)
      if (node.children !== undefined) for (const child of node.children.values()) stack.push(child)
      count++
    }
    return count - 1
  }

  /** Removes every entry. */
  clear(): void {
    this.#root = new FilterNode<T>()
    this.#size = 0
    this.#clearCache()
  }

  /**
   * Calls `fn` once for each stored (filter, key) whose filter matches the topic name `topic`, as
   * `topicMatches` defines it: `+` one level, `#` the parent and any child levels, and filters
   * starting with a wildcard never match `$` topics [MQTT-4.7.2-1]. The order of the calls is
   * unspecified. An exception from `fn` propagates and ends the calls.
   *
   * Results are cached per topic (see `TopicTreeOptions.cacheSize`): a repeated topic costs one Map
   * lookup. `fn` runs over a snapshot, so it may add, remove or match again freely.
   */
  match(topic: string, fn: (value: T, key: string, filter: string) => void): void {
    if (this.#cacheSize === 0 || topic.length > MAX_CACHED_TOPIC) {
      this.#walk(topic, fn)
      return
    }
    const cache = this.#cache
    let hit = cache.get(topic)
    if (hit === undefined) {
      hit = { values: [], keys: [], filters: [] }
      const outer = this.#target
      this.#target = hit
      try {
        this.#walk(topic, this.#collect)
      } finally {
        this.#target = outer
      }
      const bytes = topic.length * 2 + ENTRY_OVERHEAD + hit.values.length * MATCH_COST
      if (cache.size >= this.#cacheSize || this.#cacheBytes + bytes > this.#cacheLimit) this.#clearCache()
      cache.set(topic, hit)
      this.#cacheBytes += bytes
    }
    const { values, keys, filters } = hit
    for (let i = 0; i < values.length; i++) fn(values[i] as T, keys[i] as string, filters[i] as string)
  }

  /** The walk behind `match`: splits the topic once and otherwise allocates nothing. */
  #walk(topic: string, fn: (value: T, key: string, filter: string) => void): void {
    const levels = topic.split('/')
    const n = levels.length
    const nodes = this.#stackNodes
    const at = this.#stackLevels
    const base = this.#top
    let top = base
    const root = this.#root
    this.#matching++
    try {
      // The root's level is handled here so the loop need not test for the $ rule.
      if (topic.charCodeAt(0) !== DOLLAR) {
        if (root.hash !== undefined) {
          this.#top = top
          this.#emit(root.hash, fn)
        }
        if (root.plus !== undefined) {
          nodes[top] = root.plus
          at[top++] = 1
        }
      }
      const first = root.children?.get(levels[0] as string)
      if (first !== undefined) {
        nodes[top] = first
        at[top++] = 1
      }
      while (top > base) {
        top--
        const node = nodes[top] as FilterNode<T>
        const i = at[top] as number
        nodes[top] = undefined
        // '#' matches this level as the parent and every deeper level [MQTT-4.7.1-2].
        if (node.hash !== undefined) {
          this.#top = top
          this.#emit(node.hash, fn)
        }
        if (i === n) {
          this.#top = top
          this.#emit(node, fn)
          continue
        }
        if (node.plus !== undefined) {
          nodes[top] = node.plus
          at[top++] = i + 1
        }
        if (node.children !== undefined) {
          const child = node.children.get(levels[i] as string)
          if (child !== undefined) {
            nodes[top] = child
            at[top++] = i + 1
          }
        }
      }
    } finally {
      for (let j = base; j < top; j++) nodes[j] = undefined
      this.#top = base
      this.#matching--
    }
  }

  #emit(node: FilterNode<T>, fn: (value: T, key: string, filter: string) => void): void {
    // Local references: entries added or removed by `fn` replace these arrays (see #copyArrays).
    const keys = node.keys
    if (keys === undefined) return
    const values = node.values as T[]
    const filter = node.filter
    for (let j = 0; j < keys.length; j++) fn(values[j] as T, keys[j] as string, filter)
  }

  /** While a walk may be iterating a node's arrays, changes go to copies so the walk is not disturbed. */
  #copyArrays(node: FilterNode<T>): void {
    if (node.keys !== undefined) {
      node.keys = node.keys.slice()
      node.values = (node.values as T[]).slice()
    }
  }

  #find(filter: string): FilterNode<T> | undefined {
    const levels = filter.split('/')
    let node: FilterNode<T> | undefined = this.#root
    for (let i = 0; i < levels.length && node !== undefined; i++) node = node.child(levels[i] as string)
    return node
  }
}
