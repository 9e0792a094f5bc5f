import { expect } from 'chai'
import { TopicTree } from '../../lib/backend/topic-tree.js'

describe('backend/topic-tree – match cache memory follows what it holds', () => {
  it('never caches a long topic: 512 transient 60,000-character topics pin nothing', () => {
    const tree = new TopicTree<number>()
    tree.add('#', 'k', 1)
    tree.add('a/+/#', 'k2', 2)
    let matched = 0
    for (let i = 0; i < 512; i++) {
      const topic = `a/${i}/` + 'x'.repeat(60_000)
      tree.match(topic, () => matched++)
    }
    expect(matched).to.equal(1024)
    expect(tree.cacheBytes).to.equal(0)
  })

  it('bounds the cache in bytes (cacheBytes), emptying it when full, with the same answers', () => {
    const tree = new TopicTree<number>({ cacheBytes: 20_000 })
    tree.add('s/+', 'k', 1)
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 2000; i++) {
        const got: number[] = []
        tree.match(`s/${i}-${'y'.repeat(500)}`, (value) => got.push(value))
        expect(got).to.deep.equal([1])
        expect(tree.cacheBytes).to.be.at.most(20_000)
      }
    }
    expect(tree.cacheBytes).to.be.above(0)
  })
})
