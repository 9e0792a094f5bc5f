import { expect } from 'chai'
import fc from 'fast-check'
import { RetainedTree, TopicTree } from '../../lib/backend/topic-tree.js'
import { topicMatches } from '../../lib/packet/topic.js'

/** Topic levels and filter levels that exercise the corner cases: empty levels, `$`, wildcards. */
const topicLevel = fc.constantFrom('a', 'b', '', '$', '$a', 'a$')
const topicArb = fc
  .array(topicLevel, { minLength: 1, maxLength: 4 })
  .map((l) => l.join('/'))
  .filter((t) => t !== '')
const filterArb = fc
  .tuple(fc.array(fc.constantFrom('a', 'b', '', '$a', '+'), { maxLength: 4 }), fc.boolean())
  .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
  .filter((f) => f !== '')
const keyArb = fc.constantFrom('c1', 'c2', 'c3')

/** What `TopicTree.match` reports, as sorted "filter key value" strings. */
function matched<T>(tree: TopicTree<T>, topic: string): string[] {
  const out: string[] = []
  tree.match(topic, (value, key, filter) => out.push(`${filter} ${key} ${String(value)}`))
  return out.sort()
}

function retainedMatched<T>(tree: RetainedTree<T>, filter: string): string[] {
  const out: string[] = []
  tree.match(filter, (value, topic) => out.push(`${topic} ${String(value)}`))
  return out.sort()
}

describe('backend/topic-tree', () => {
  describe('TopicTree', () => {
    it('adds, replaces, gets and removes entries, counting them in size', () => {
      const tree = new TopicTree<number>()
      expect(tree.add('a/b', 'c1', 1)).to.equal(true)
      expect(tree.add('a/b', 'c2', 2)).to.equal(true)
      expect(tree.add('a/+', 'c1', 3)).to.equal(true)
      expect(tree.size).to.equal(3)
      expect(tree.add('a/b', 'c1', 4)).to.equal(false)
      expect(tree.size).to.equal(3)
      expect(tree.get('a/b', 'c1')).to.equal(4)
      expect(tree.get('a/b', 'c3')).to.equal(undefined)
      expect(tree.get('a/c', 'c1')).to.equal(undefined)
      expect(tree.has('a/+', 'c1')).to.equal(true)
      expect(tree.has('a/#', 'c1')).to.equal(false)
      expect(tree.remove('a/b', 'c1')).to.equal(true)
      expect(tree.remove('a/b', 'c1')).to.equal(false)
      expect(tree.remove('x/y', 'c1')).to.equal(false)
      expect(tree.size).to.equal(2)
      expect(matched(tree, 'a/b')).to.deep.equal(['a/+ c1 3', 'a/b c2 2'])
    })

    it('keeps the wildcard levels + and # apart from literal levels', () => {
      const tree = new TopicTree<string>()
      tree.add('a/+', 'k', 'plus')
      tree.add('a/#', 'k', 'hash')
      tree.add('a/b', 'k', 'literal')
      expect(tree.get('a/+', 'k')).to.equal('plus')
      expect(tree.get('a/#', 'k')).to.equal('hash')
      expect(tree.get('a/b', 'k')).to.equal('literal')
      expect(matched(tree, 'a/c')).to.deep.equal(['a/# k hash', 'a/+ k plus'])
    })

    const examples: [filters: string[], topic: string, expected: string[], why: string][] = [
      [['sport/tennis/player1/#'], 'sport/tennis/player1', ['sport/tennis/player1/#'], '# includes the parent [MQTT-4.7.1-2]'],
      [['sport/tennis/player1/#'], 'sport/tennis/player1/score/wimbledon', ['sport/tennis/player1/#'], '# matches many levels'],
      [['sport/#', 'sport/+', '#', '+'], 'sport', ['#', '+', 'sport/#'], '"sport/#" matches "sport", "sport/+" does not'],
      [['sport/+'], 'sport/', ['sport/+'], '"sport/+" matches "sport/"'],
      [['+/+', '/+', '+'], '/finance', ['+/+', '/+'], '"/finance" is matched by "+/+" and "/+", not "+"'],
      [['#', '+/monitor/Clients', '$SYS/#', '$SYS/monitor/+', '+/#'], '$SYS/monitor/Clients', ['$SYS/#', '$SYS/monitor/+'], 'the $ rule [MQTT-4.7.2-1]'],
      [['a/#', 'a/+'], 'a/$b', ['a/#', 'a/+'], 'the $ rule is for the first level only'],
      [['a//b', 'a/+/b', 'a/#', 'a/b'], 'a//b', ['a/#', 'a/+/b', 'a//b'], 'empty levels'],
      [['a/', 'a/+', 'a'], 'a/', ['a/', 'a/+'], 'a trailing empty level'],
      [['+/#', 'a/+/#'], 'a', ['+/#'], '"+/#" matches one level, "a/+/#" does not']
    ]
    for (const [filters, topic, expected, why] of examples) {
      it(`matches ${topic} against ${filters.join(', ')}: ${why}`, () => {
        const tree = new TopicTree<number>()
        filters.forEach((f, i) => tree.add(f, 'k', i))
        const found: string[] = []
        tree.match(topic, (_value, key, filter) => {
          expect(key).to.equal('k')
          found.push(filter)
        })
        expect(found.sort()).to.deep.equal([...expected].sort())
      })
    }

    it('reports every key of a filter once, with many keys (indexed) and after removals', () => {
      const tree = new TopicTree<number>()
      for (let i = 0; i < 100; i++) tree.add('a/+', `c${i}`, i)
      for (let i = 0; i < 100; i += 3) expect(tree.remove('a/+', `c${i}`)).to.equal(true)
      for (let i = 1; i < 100; i += 3) expect(tree.add('a/+', `c${i}`, -i)).to.equal(false)
      const seen = new Map<string, number>()
      tree.match('a/b', (value, key) => {
        expect(seen.has(key), key).to.equal(false)
        seen.set(key, value)
      })
      expect(seen.size).to.equal(66)
      expect(tree.size).to.equal(66)
      for (let i = 0; i < 100; i++) {
        const expected = i % 3 === 0 ? undefined : i % 3 === 1 ? -i : i
        expect(seen.get(`c${i}`)).to.equal(expected)
        expect(tree.get('a/+', `c${i}`)).to.equal(expected)
      }
    })

    it('prunes the nodes left empty by remove', () => {
      const tree = new TopicTree<number>()
      tree.add('a/b/c/d', 'k', 1)
      tree.add('a/+/#', 'k', 2)
      tree.add('a/b', 'k', 3)
      expect(tree.nodeCount).to.equal(6)
      tree.remove('a/b/c/d', 'k')
      expect(tree.nodeCount).to.equal(4)
      tree.remove('a/+/#', 'k')
      expect(tree.nodeCount).to.equal(2)
      tree.remove('a/b', 'k')
      expect(tree.nodeCount).to.equal(0)
      expect(tree.size).to.equal(0)
    })

    it('lets the callback remove entries, its own included, without skipping others', () => {
      const tree = new TopicTree<number>()
      for (let i = 0; i < 5; i++) tree.add('a', `c${i}`, i)
      for (let i = 0; i < 30; i++) tree.add('+', `d${i}`, i)
      const seen: string[] = []
      tree.match('a', (_value, key, filter) => {
        seen.push(key)
        // A client that leaves while receiving drops its subscriptions.
        expect(tree.remove(filter, key)).to.equal(true)
      })
      expect(seen.sort()).to.deep.equal(
        [...Array.from({ length: 5 }, (_, i) => `c${i}`), ...Array.from({ length: 30 }, (_, i) => `d${i}`)].sort()
      )
      expect(tree.size).to.equal(0)
      expect(tree.nodeCount).to.equal(0)
    })

    it('lets the callback add entries to the node being walked without visiting them in this walk', () => {
      const tree = new TopicTree<number>()
      for (let i = 0; i < 20; i++) tree.add('a', `c${i}`, i)
      const seen: string[] = []
      tree.match('a', (value, key) => {
        seen.push(key)
        tree.add('a', `late-${key}`, value)
      })
      expect(seen.sort()).to.deep.equal(Array.from({ length: 20 }, (_, i) => `c${i}`).sort())
      expect(tree.size).to.equal(40)
      expect(matched(tree, 'a')).to.have.length(40)
    })

    it('lets the callback match again (re-entrant match)', () => {
      const tree = new TopicTree<number>()
      tree.add('will/#', 'w', 0)
      tree.add('will/c', 'v', 0)
      tree.add('a/+', 'c1', 1)
      tree.add('a/b', 'c2', 2)
      tree.add('#', 'c3', 3)
      const outer: string[] = []
      const inner: string[] = []
      tree.match('a/b', (_value, key) => {
        outer.push(key)
        // A delivery that fails closes a client, whose will is published at once.
        tree.match('will/c', (_v, k) => inner.push(k))
      })
      expect(outer.sort()).to.deep.equal(['c1', 'c2', 'c3'])
      expect(inner.sort()).to.deep.equal(['c3', 'c3', 'c3', 'v', 'v', 'v', 'w', 'w', 'w'])
    })

    it('ends the walk with the exception of the callback and stays usable', () => {
      const tree = new TopicTree<number>()
      tree.add('a/#', 'k', 1)
      tree.add('a/b', 'k', 2)
      expect(() =>
        tree.match('a/b', () => {
          throw new Error('boom')
        })
      ).to.throw('boom')
      expect(matched(tree, 'a/b')).to.deep.equal(['a/# k 1', 'a/b k 2'])
    })

    it('matches a topic of 32,768 levels without overflowing the stack', () => {
      const tree = new TopicTree<number>()
      const topic = 'a/'.repeat(32_767) + 'a'
      tree.add(topic, 'k', 1)
      tree.add('+/'.repeat(32_767) + '#', 'k', 2)
      tree.add('#', 'k', 3)
      expect(matched(tree, topic).map((s) => s.slice(-1)).sort()).to.deep.equal(['1', '2', '3'])
      expect(tree.remove(topic, 'k')).to.equal(true)
      expect(tree.remove('+/'.repeat(32_767) + '#', 'k')).to.equal(true)
      expect(tree.nodeCount).to.equal(1)
    })

    it('clear removes every entry', () => {
      const tree = new TopicTree<number>()
      tree.add('a', 'k', 1)
      tree.clear()
      expect(tree.size).to.equal(0)
      expect(matched(tree, 'a')).to.deep.equal([])
    })

    it('match agrees with brute-force topicMatches over random filters and topics (property)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(filterArb, keyArb), { maxLength: 20 }),
          fc.array(topicArb, { minLength: 1, maxLength: 10 }),
          (entries, topics) => {
            const tree = new TopicTree<string>()
            const model = new Map<string, string>()
            entries.forEach(([filter, key], i) => {
              tree.add(filter, key, `v${i}`)
              model.set(`${filter} ${key}`, `v${i}`)
            })
            expect(tree.size).to.equal(model.size)
            for (const topic of topics) {
              const expected = [...model]
                .filter(([fk]) => topicMatches(fk.slice(0, fk.lastIndexOf(' ')), topic))
                .map(([fk, v]) => `${fk} ${v}`)
                .sort()
              expect(matched(tree, topic), topic).to.deep.equal(expected)
            }
          }
        ),
        { numRuns: 500 }
      )
    })

    it('add and remove stay consistent with a model, and removing everything prunes every node (property)', () => {
      const op = fc.tuple(fc.boolean(), filterArb, keyArb, fc.nat(9))
      fc.assert(
        fc.property(fc.array(op, { maxLength: 40 }), fc.array(topicArb, { maxLength: 5 }), (ops, topics) => {
          const tree = new TopicTree<number>()
          const model = new Map<string, [string, string, number]>()
          for (const [isAdd, filter, key, value] of ops) {
            const id = `${filter} ${key}`
            if (isAdd) {
              expect(tree.add(filter, key, value)).to.equal(!model.has(id))
              model.set(id, [filter, key, value])
            } else {
              expect(tree.remove(filter, key)).to.equal(model.delete(id))
            }
            expect(tree.size).to.equal(model.size)
          }
          for (const [filter, key, value] of model.values()) expect(tree.get(filter, key)).to.equal(value)
          for (const topic of topics) {
            const expected = [...model.values()]
              .filter(([filter]) => topicMatches(filter, topic))
              .map(([f, k, v]) => `${f} ${k} ${v}`)
              .sort()
            expect(matched(tree, topic)).to.deep.equal(expected)
          }
          for (const [filter, key] of model.values()) expect(tree.remove(filter, key)).to.equal(true)
          expect(tree.size).to.equal(0)
          expect(tree.nodeCount).to.equal(0)
        }),
        { numRuns: 300 }
      )
    })

    it('cached results follow every add, replace and remove, with any cache size (property)', () => {
      // Removals pick existing entries and topics are often made from stored filters, so that
      // matches (and stale cache entries, were invalidation missing) are common.
      const op = fc.tuple(fc.nat(2), filterArb, keyArb, fc.nat(9), topicArb, fc.nat(1000))
      const topicFrom = (filter: string): string => filter.replace(/\+/g, 'x').replace(/#/g, 'x/y')
      fc.assert(
        fc.property(fc.array(op, { maxLength: 40 }), fc.constantFrom(0, 1, 2, 4096), (ops, cacheSize) => {
          const tree = new TopicTree<number>({ cacheSize })
          const model = new Map<string, [string, string, number]>()
          for (const [kind, filter, key, value, randomTopic, pick] of ops) {
            const entries = [...model.values()]
            if (kind > 0 || entries.length === 0) {
              tree.add(filter, key, value)
              model.set(`${filter} ${key}`, [filter, key, value])
            } else {
              const [f, k] = entries[pick % entries.length]!
              expect(tree.remove(f, k)).to.equal(true)
              model.delete(`${f} ${k}`)
            }
            const stored = [...model.values()]
            const topic = pick % 2 === 0 || stored.length === 0 ? randomTopic : topicFrom(stored[pick % stored.length]![0])
            // Match after every change, twice (the second from the cache when enabled).
            const expected = stored
              .filter(([f]) => topicMatches(f, topic))
              .map(([f, k, v]) => `${f} ${k} ${v}`)
              .sort()
            expect(matched(tree, topic)).to.deep.equal(expected)
            expect(matched(tree, topic)).to.deep.equal(expected)
          }
        }),
        { numRuns: 300 }
      )
    })

    it('a repeated topic is answered from the cache: the walk does not run again', () => {
      const tree = new TopicTree<number>()
      tree.add('a/+', 'c1', 1)
      expect(matched(tree, 'a/b')).to.deep.equal(['a/+ c1 1'])
      // Reach into no private state: a callback that adds during the second (cached) match must
      // see the snapshot, and the next match must see the change.
      const seen: number[] = []
      tree.match('a/b', (v) => {
        seen.push(v)
        tree.add('a/b', 'c2', 2)
      })
      expect(seen).to.deep.equal([1])
      expect(matched(tree, 'a/b')).to.deep.equal(['a/+ c1 1', 'a/b c2 2'])
    })
  })

  describe('RetainedTree', () => {
    it('sets, replaces, gets and deletes topics, counting them in size', () => {
      const tree = new RetainedTree<string>()
      tree.set('a/b', 'x')
      tree.set('a', 'y')
      tree.set('a/b', 'z')
      expect(tree.size).to.equal(2)
      expect(tree.get('a/b')).to.equal('z')
      expect(tree.get('a/c')).to.equal(undefined)
      expect(tree.has('a')).to.equal(true)
      expect(tree.has('a/b/c')).to.equal(false)
      expect(tree.delete('a/b')).to.equal(true)
      expect(tree.delete('a/b')).to.equal(false)
      expect(tree.delete('q')).to.equal(false)
      expect(tree.size).to.equal(1)
      expect(tree.get('a')).to.equal('y')
    })

    it('stores undefined as a value', () => {
      const tree = new RetainedTree<string | undefined>()
      tree.set('a', undefined)
      expect(tree.has('a')).to.equal(true)
      expect(tree.size).to.equal(1)
      expect(retainedMatched(tree, '#')).to.deep.equal(['a undefined'])
    })

    const topics = [
      'sport',
      'sport/',
      'sport/tennis',
      'sport/tennis/player1',
      'sport/tennis/player1/score/wimbledon',
      '/finance',
      'finance',
      'a//b',
      '$SYS/monitor/Clients',
      '$SYS',
      'a/$b'
    ]
    const examples: [filter: string, expected: string[], why: string][] = [
      ['sport/tennis/player1/#', ['sport/tennis/player1', 'sport/tennis/player1/score/wimbledon'], '# includes the parent [MQTT-4.7.1-2]'],
      ['sport/#', ['sport', 'sport/', 'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/score/wimbledon'], '"sport/#" matches "sport"'],
      ['sport/+', ['sport/', 'sport/tennis'], '"sport/+" matches "sport/" but not "sport"'],
      ['+', ['finance', 'sport'], '"+" matches one level and no $ topic'],
      ['+/+', ['/finance', 'a/$b', 'sport/', 'sport/tennis'], '"+/+" matches "/finance"'],
      ['/+', ['/finance'], '"/+" matches "/finance"'],
      ['#', ['/finance', 'a//b', 'a/$b', 'finance', 'sport', 'sport/', 'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/score/wimbledon'], '# skips $ topics [MQTT-4.7.2-1]'],
      ['+/monitor/Clients', [], '+ skips $ topics [MQTT-4.7.2-1]'],
      ['$SYS/#', ['$SYS', '$SYS/monitor/Clients'], '$SYS/# matches $SYS topics'],
      ['a/+/b', ['a//b'], '+ matches an empty level'],
      ['a/+', ['a/$b'], 'the $ rule is for the first level only'],
      ['sport/tennis', ['sport/tennis'], 'a filter without wildcards']
    ]
    for (const [filter, expected, why] of examples) {
      it(`matches ${filter}: ${why}`, () => {
        const tree = new RetainedTree<number>()
        topics.forEach((t, i) => tree.set(t, i))
        const found: string[] = []
        tree.match(filter, (value, topic) => {
          expect(value).to.equal(topics.indexOf(topic))
          found.push(topic)
        })
        expect(found.sort()).to.deep.equal([...expected].sort())
      })
    }

    it('prunes the nodes left empty by delete', () => {
      const tree = new RetainedTree<number>()
      tree.set('a/b/c', 1)
      tree.set('a', 2)
      expect(tree.nodeCount).to.equal(3)
      tree.delete('a/b/c')
      expect(tree.nodeCount).to.equal(1)
      tree.delete('a')
      expect(tree.nodeCount).to.equal(0)
    })

    it('lets the callback delete topics (expired messages) during a match', () => {
      const tree = new RetainedTree<number>()
      for (let i = 0; i < 20; i++) tree.set(`t/${i}`, i)
      const seen: number[] = []
      tree.match('t/+', (value, topic) => {
        seen.push(value)
        // Deleting the topics not yet reached hides them from the walk.
        for (let i = 0; i < 20; i++) tree.delete(`t/${i}`)
        expect(tree.has(topic)).to.equal(false)
      })
      expect(seen).to.have.length(1)
      expect(tree.size).to.equal(0)
      expect(tree.nodeCount).to.equal(0)
    })

    it('matches # on a topic of 32,768 levels without overflowing the stack', () => {
      const tree = new RetainedTree<number>()
      const topic = 'a/'.repeat(32_767) + 'a'
      tree.set(topic, 1)
      expect(retainedMatched(tree, '#')).to.have.length(1)
      expect(retainedMatched(tree, '+/'.repeat(32_767) + '+')).to.have.length(1)
      expect(tree.delete(topic)).to.equal(true)
      expect(tree.nodeCount).to.equal(0)
    })

    it('clear removes every topic', () => {
      const tree = new RetainedTree<number>()
      tree.set('a', 1)
      tree.clear()
      expect(tree.size).to.equal(0)
      expect(retainedMatched(tree, '#')).to.deep.equal([])
    })

    it('match agrees with brute-force topicMatches over random topics and filters (property)', () => {
      fc.assert(
        fc.property(
          fc.array(topicArb, { maxLength: 20 }),
          fc.array(filterArb, { minLength: 1, maxLength: 10 }),
          (stored, filters) => {
            const tree = new RetainedTree<number>()
            const model = new Map<string, number>()
            stored.forEach((t, i) => {
              tree.set(t, i)
              model.set(t, i)
            })
            expect(tree.size).to.equal(model.size)
            for (const filter of filters) {
              const expected = [...model]
                .filter(([t]) => topicMatches(filter, t))
                .map(([t, v]) => `${t} ${v}`)
                .sort()
              expect(retainedMatched(tree, filter), filter).to.deep.equal(expected)
            }
          }
        ),
        { numRuns: 500 }
      )
    })

    it('set and delete stay consistent with a model, and deleting everything prunes every node (property)', () => {
      const op = fc.tuple(fc.boolean(), topicArb, fc.nat(9))
      fc.assert(
        fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
          const tree = new RetainedTree<number>()
          const model = new Map<string, number>()
          for (const [isSet, topic, value] of ops) {
            if (isSet) {
              tree.set(topic, value)
              model.set(topic, value)
            } else {
              expect(tree.delete(topic)).to.equal(model.delete(topic))
            }
            expect(tree.size).to.equal(model.size)
          }
          for (const [topic, value] of model) expect(tree.get(topic)).to.equal(value)
          for (const topic of model.keys()) expect(tree.delete(topic)).to.equal(true)
          expect(tree.size).to.equal(0)
          expect(tree.nodeCount).to.equal(0)
        }),
        { numRuns: 300 }
      )
    })
  })
})
