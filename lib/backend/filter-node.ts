/** The trie node of `TopicTree` (topic-tree.ts). Internal to the backend. */

/** A node of `TopicTree`: one filter level. `+` and `#` children live apart from the literal ones. */
export class FilterNode<T> {
  children: Map<string, FilterNode<T>> | undefined = undefined
  plus: FilterNode<T> | undefined = undefined
  hash: FilterNode<T> | undefined = undefined
  /** Keys and values stored under this node's filter, in parallel arrays (cheap to walk). */
  keys: string[] | undefined = undefined
  values: T[] | undefined = undefined
  /** key → position in `keys`, built only when a node holds many keys (a linear scan is faster below). */
  index: Map<string, number> | undefined = undefined
  /** The whole filter this node stands for; set when a value is first stored. */
  filter = ''

  isEmpty(): boolean {
    return (
      this.keys === undefined &&
      this.children === undefined &&
      this.plus === undefined &&
      this.hash === undefined
    )
  }

  indexOf(key: string): number {
    const keys = this.keys
    if (keys === undefined) return -1
    if (this.index !== undefined) return this.index.get(key) ?? -1
    for (let i = 0; i < keys.length; i++) if (keys[i] === key) return i
    return -1
  }

  child(level: string): FilterNode<T> | undefined {
    if (level === '+') return this.plus
    if (level === '#') return this.hash
    return this.children?.get(level)
  }

  addChild(level: string): FilterNode<T> {
    const node = new FilterNode<T>()
    if (level === '+') this.plus = node
    else if (level === '#') this.hash = node
    else (this.children ??= new Map()).set(level, node)
    return node
  }

  removeChild(level: string): void {
    if (level === '+') this.plus = undefined
    else if (level === '#') this.hash = undefined
    else if (this.children !== undefined) {
      this.children.delete(level)
      if (this.children.size === 0) this.children = undefined
    }
  }
}

/** Above this many keys in one node, `FilterNode.index` is kept. */
export const INDEX_THRESHOLD = 16

