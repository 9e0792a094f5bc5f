/**
 * `RetainedTree`: retained messages by topic name, with a wildcard lookup (split out of
 * topic-tree.ts, which re-exports it). Walks with an explicit stack, never recursion (see topic-tree.ts).
 */

const DOLLAR = 0x24 // '$'

/** A node of `RetainedTree`: one topic level. */
class TopicNode<T> {
  children: Map<string, TopicNode<T>> | undefined = undefined
  /** Whether `value` holds a stored value (T itself may include undefined). */
  has = false
  value: T | undefined = undefined
  /** The whole topic this node stands for; set when a value is stored. */
  topic = ''
  constructor(readonly level: string) {}
}

/**
 * Retained messages by topic name, with a wildcard lookup that walks only the branches a filter can
 * match. A topic name is a trie path; `+` and `#` in `match` fan out over children, everything else
 * is one `Map` lookup per level.
 */
export class RetainedTree<T> {
  #root = new TopicNode<T>('')
  #size = 0

  /** The number of stored topics. */
  get size(): number {
    return this.#size
  }

  /** Stores `value` under the topic name `topic`, replacing any value stored there. */
  set(topic: string, value: T): void {
    const levels = topic.split('/')
    let node = this.#root
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as string
      let next = node.children?.get(level)
      if (next === undefined) {
        next = new TopicNode<T>(level)
        ;(node.children ??= new Map()).set(level, next)
      }
      node = next
    }
    if (!node.has) {
      node.has = true
      node.topic = topic
      this.#size++
    }
    node.value = value
  }

  /** Deletes the value stored under `topic` and prunes empty nodes. Returns true if there was one. */
  delete(topic: string): boolean {
    const levels = topic.split('/')
    const path: TopicNode<T>[] = [this.#root]
    let node = this.#root
    for (let i = 0; i < levels.length; i++) {
      const next = node.children?.get(levels[i] as string)
      if (next === undefined) return false
      node = next
      path.push(node)
    }
    if (!node.has) return false
    node.has = false
    node.value = undefined
    this.#size--
    for (let i = levels.length; i > 0; i--) {
      const child = path[i] as TopicNode<T>
      if (child.has || child.children !== undefined) break
      const parent = path[i - 1] as TopicNode<T>
      const children = parent.children as Map<string, TopicNode<T>>
      children.delete(child.level)
      if (children.size === 0) parent.children = undefined
    }
    return true
  }

  /** The value stored under `topic`, if any. */
  get(topic: string): T | undefined {
    const node = this.#find(topic)
    return node?.has === true ? node.value : undefined
  }

  /** True if a value is stored under `topic`. */
  has(topic: string): boolean {
    return this.#find(topic)?.has === true
  }

  /**
   * The number of trie nodes below the root (diagnostics, O(nodes)): deleting every topic brings it
   * back to 0, because `delete` prunes the nodes it leaves empty.
   */
  get nodeCount(): number {
    let count = 0
    const stack: TopicNode<T>[] = [this.#root]
    while (stack.length > 0) {
      const node = stack.pop() as TopicNode<T>
      if (node.children !== undefined) for (const child of node.children.values()) stack.push(child)
      count++
    }
    return count - 1
  }

  /** Removes every stored topic. */
  clear(): void {
    this.#root = new TopicNode<T>('')
    this.#size = 0
  }

  /**
   * Calls `fn` for each stored topic that the (valid, non-shared) topic filter `filter` matches, as
   * `topicMatches` defines it; a filter starting with `+` or `#` skips `$` topics [MQTT-4.7.2-1].
   * The order is unspecified. `fn` may set and delete entries: a topic deleted before the walk
   * reaches it is not reported; one added during the walk may or may not be.
   */
  match(filter: string, fn: (value: T, topic: string) => void): void {
    const levels = filter.split('/')
    const n = levels.length
    // Entries are (node, level index); index -1 means "report this node and its whole subtree".
    const nodes: TopicNode<T>[] = [this.#root]
    const at: number[] = [0]
    while (nodes.length > 0) {
      const node = nodes.pop() as TopicNode<T>
      const i = at.pop() as number
      if (i < 0 || i === n) {
        if (node.has) fn(node.value as T, node.topic)
        if (i < 0 && node.children !== undefined) {
          for (const child of node.children.values()) {
            nodes.push(child)
            at.push(-1)
          }
        }
        continue
      }
      const level = levels[i] as string
      if (level === '#' || level === '+') {
        // '#' also matches the parent level [MQTT-4.7.1-2] (the root is no topic).
        if (level === '#' && i > 0 && node.has) fn(node.value as T, node.topic)
        if (node.children === undefined) continue
        const next = level === '#' ? -1 : i + 1
        for (const child of node.children.values()) {
          if (i === 0 && child.level.charCodeAt(0) === DOLLAR) continue
          nodes.push(child)
          at.push(next)
        }
      } else {
        const child = node.children?.get(level)
        if (child !== undefined) {
          nodes.push(child)
          at.push(i + 1)
        }
      }
    }
  }

  #find(topic: string): TopicNode<T> | undefined {
    const levels = topic.split('/')
    let node: TopicNode<T> | undefined = this.#root
    for (let i = 0; i < levels.length && node !== undefined; i++) {
      node = node.children?.get(levels[i] as string)
    }
    return node
  }
}
