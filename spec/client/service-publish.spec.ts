import { expect } from 'chai'
import { lastValueFrom, toArray } from 'rxjs'
import { Service } from '../../lib/client/service.js'
import type { ServiceOptions } from '../../lib/client/service.js'
import type { Delivered, Enqueued, OutgoingMessage } from '../../lib/client/service-publish.js'
import { InvalidRequestError, LimitError, PublishFailedError, StoreError } from '../../lib/client/errors.js'
import { MemoryStore } from '../../lib/client/store/memory-store.js'
import type { StoreRecord } from '../../lib/client/store/store.js'
import { ReasonCode } from '../../lib/packet/index.js'
import { ScriptedBroker } from './helpers/scripted-broker.js'
import { VirtualClock, settle } from './helpers/virtual-clock.js'

/** A MemoryStore whose commits of `out` records wait until the spec opens the gate (or fail). */
class GatedStore extends MemoryStore {
  private held: { resolve: () => void; reject: (error: Error) => void }[] = []
  failWith: Error | undefined
  override commit(records: readonly StoreRecord[]): void | Promise<void> {
    if (!records.some((r) => r.op === 'out')) return super.commit(records)
    return new Promise<void>((resolve, reject) => {
      this.held.push({
        resolve: () => {
          const applied = super.commit(records)
          void Promise.resolve(applied).then(resolve, reject)
        },
        reject
      })
    })
  }

  get waiting(): number {
    return this.held.length
  }

  release(): void {
    for (const entry of this.held.splice(0)) {
      if (this.failWith !== undefined) entry.reject(this.failWith)
      else entry.resolve()
    }
  }
}

function make(options: Partial<ServiceOptions> = {}): { service: Service; scripted: ScriptedBroker; clock: VirtualClock } {
  const scripted = new ScriptedBroker()
  const clock = new VirtualClock()
  const service = new Service({ dialer: scripted.dialer, clock, clientId: 'p1', clean: false, random: () => 0.5, reconnect: { minDelayMs: 1000, maxDelayMs: 8000 }, ...options })
  return { service, scripted, clock }
}

/** Whether `promise` has settled (after letting pending work run). */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false
  promise.then(
    () => (settled = true),
    () => (settled = true)
  )
  await settle()
  return settled
}

describe('client – Service enqueue, delivered$ and publishAll', () => {
  const services: Service[] = []
  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop().catch(() => undefined)
  })

  it('enqueue resolves once the message is durable in the store, before anything is sent; done on PUBACK', async () => {
    const store = new GatedStore()
    const { service, scripted } = make({ store })
    services.push(service)
    await service.start()
    const broker = await scripted.next()
    await broker.accept()
    await service.online()
    const enqueued = service.enqueue('t', 'a', { qos: 1 })
    expect(await isSettled(enqueued)).to.equal(false)
    expect(store.waiting).to.equal(1)
    await broker.expectNothing()
    store.release()
    const { id, done } = await enqueued
    expect(id).to.be.a('string')
    expect(await isSettled(done)).to.equal(false)
    const publish = await broker.expect('publish')
    broker.send({ type: 'puback', packetId: publish.packetId! })
    expect((await done).reasonCode).to.equal(0)
  })

  it('enqueue rejects with StoreError when the store cannot make the message durable, and sends nothing', async () => {
    const store = new GatedStore()
    const { service, scripted } = make({ store })
    services.push(service)
    await service.start()
    const broker = await scripted.next()
    await broker.accept()
    await service.online()
    store.failWith = new StoreError('io', 'disk full')
    const enqueued = service.enqueue('t', 'a', { qos: 2 })
    await settle()
    store.release()
    expect(await enqueued.catch((e: unknown) => e)).to.be.instanceOf(StoreError)
    await broker.expectNothing()
  })

  it('enqueue accepts while offline (QoS 1/2 into the session, QoS 0 queued) and refuses beyond the bounds', async () => {
    const { service, scripted, clock } = make({ offline: { maxMessages: 1, qos0MaxMessages: 1 } })
    services.push(service)
    scripted.down = true
    await service.start()
    const one = await service.enqueue('t', 'one', { qos: 1 })
    const zero = await service.enqueue('t', 'zero')
    expect(one.id).to.be.a('string')
    expect(zero.id).to.equal(undefined)
    expect(await service.enqueue('t', 'two', { qos: 2 }).catch((e: unknown) => e)).to.be.instanceOf(LimitError)
    expect(await service.enqueue('t', 'zero-2').catch((e: unknown) => e)).to.be.instanceOf(LimitError)
    expect(await service.enqueue('bad/#', 'x', { qos: 1 }).catch((e: unknown) => e)).to.be.instanceOf(InvalidRequestError)
    expect(await isSettled(one.done)).to.equal(false)
    scripted.down = false
    await clock.advance(8000)
    const broker = await scripted.next()
    await broker.accept()
    const p1 = await broker.expect('publish')
    const p0 = await broker.expect('publish')
    expect([p1.payload.toString(), p0.payload.toString()]).to.deep.equal(['one', 'zero'])
    await zero.done
    broker.send({ type: 'puback', packetId: p1.packetId! })
    await one.done
  })

  it('delivered$ reports every acknowledged QoS 1/2 message with its enqueue id, and recovered ones after a restart', async () => {
    const store = new MemoryStore()
    const scripted = new ScriptedBroker()
    const clock = new VirtualClock()
    const options = { dialer: scripted.dialer, clock, clientId: 'd1', clean: false, store }
    const first = new Service(options)
    services.push(first)
    const delivered: Delivered[] = []
    first.delivered$.subscribe((d) => delivered.push(d))
    await first.start()
    const c1 = await scripted.next()
    await c1.accept()
    const a = await first.enqueue('t/a', 'a', { qos: 1 })
    const b = await first.enqueue('t/b', 'b', { qos: 2 })
    const c = await first.enqueue('t/c', 'c', { qos: 1 })
    const pa = await c1.expect('publish')
    const pb = await c1.expect('publish')
    const pc = await c1.expect('publish')
    c1.send({ type: 'puback', packetId: pa.packetId! })
    c1.send({ type: 'pubrec', packetId: pb.packetId! })
    const rel = await c1.expect('pubrel')
    c1.send({ type: 'pubcomp', packetId: rel.packetId })
    await Promise.all([a.done, b.done])
    expect(delivered.map((d) => [d.id, d.topic, d.qos, d.recovered])).to.deep.equal([
      [a.id, 't/a', 1, false],
      [b.id, 't/b', 2, false]
    ])
    // c is never acknowledged by this process: the next one resends it and reports it.
    await first.stop()
    expect(await c.done.catch((e: unknown) => e)).to.be.an('error')
    const second = new Service(options)
    services.push(second)
    const later: Delivered[] = []
    second.delivered$.subscribe((d) => later.push(d))
    await second.start()
    const c2 = await scripted.next()
    await c2.accept({ sessionPresent: true })
    const resent = await c2.expect('publish')
    expect([resent.packetId, resent.dup, resent.payload.toString()]).to.deep.equal([pc.packetId, true, 'c'])
    c2.send({ type: 'puback', packetId: resent.packetId! })
    await settle()
    expect(later).to.deep.equal([{ id: c.id, topic: 't/c', qos: 1, reasonCode: 0, recovered: true }])
  })

  it('publishAll publishes with at most `concurrency` unsettled and settles each message on its own', async () => {
    const { service, scripted } = make({ protocolVersion: 5 })
    services.push(service)
    await service.start()
    const broker = await scripted.next()
    await broker.accept()
    await service.online()
    const pulled: number[] = []
    async function* source(): AsyncGenerator<OutgoingMessage> {
      for (let i = 0; i < 5; i++) {
        pulled.push(i)
        yield i === 3 ? { topic: 'bad/+', payload: 'x', qos: 1 } : { topic: `t/${i}`, payload: String(i), qos: 1 }
      }
    }
    const outcomes = lastValueFrom(service.publishAll(source(), { concurrency: 2 }).pipe(toArray()))
    const p0 = await broker.expect('publish')
    const p1 = await broker.expect('publish')
    await broker.expectNothing()
    expect(pulled).to.deep.equal([0, 1])
    broker.send({ type: 'puback', packetId: p1.packetId!, reasonCode: ReasonCode.NotAuthorized })
    const p2 = await broker.expect('publish')
    broker.send({ type: 'puback', packetId: p0.packetId! })
    // Message 3 is refused before sending: it settles at once and frees its slot for message 4.
    const p4 = await broker.expect('publish')
    expect([p2.topic, p4.topic]).to.deep.equal(['t/2', 't/4'])
    broker.send({ type: 'puback', packetId: p2.packetId! })
    broker.send({ type: 'puback', packetId: p4.packetId! })
    const all = await outcomes
    const byIndex = [...all].sort((x, y) => x.index - y.index)
    expect(byIndex.map((o) => o.index)).to.deep.equal([0, 1, 2, 3, 4])
    expect(byIndex[0]!.result?.reasonCode).to.equal(0)
    expect(byIndex[1]!.error).to.be.instanceOf(PublishFailedError)
    expect(byIndex[3]!.error).to.be.instanceOf(InvalidRequestError)
    expect(byIndex[4]!.message.topic).to.equal('t/4')
  })

  it('publishAll over an array completes after the last settlement; a throwing source errors the stream', async () => {
    const { service, scripted } = make()
    services.push(service)
    await service.start()
    const broker = await scripted.next()
    await broker.accept()
    await service.online()
    const messages: OutgoingMessage[] = [{ topic: 'a', payload: '1' }, { topic: 'b', payload: '2', qos: 2 }]
    let completed = false
    const outcomes = lastValueFrom(service.publishAll(messages).pipe(toArray())).finally(() => (completed = true))
    await broker.expect('publish')
    const q2 = await broker.expect('publish')
    await settle()
    expect(completed).to.equal(false)
    broker.send({ type: 'pubrec', packetId: q2.packetId! })
    await broker.expect('pubrel')
    broker.send({ type: 'pubcomp', packetId: q2.packetId! })
    expect((await outcomes).map((o) => [o.index, o.error])).to.have.deep.members([[0, undefined], [1, undefined]])
    function* broken(): Generator<OutgoingMessage> {
      yield { topic: 'a', payload: '1' }
      throw new Error('source failed')
    }
    const failed = await lastValueFrom(service.publishAll(broken())).catch((e: unknown) => e)
    expect((failed as Error).message).to.equal('source failed')
  })

  it('enqueue keeps the durability order: a second message is not accepted before the first', async () => {
    const store = new GatedStore()
    const { service, scripted } = make({ store })
    services.push(service)
    await service.start()
    const broker = await scripted.next()
    await broker.accept()
    await service.online()
    const results: Enqueued[] = []
    const first = service.enqueue('t', '1', { qos: 1 }).then((r) => results.push(r))
    const second = service.enqueue('t', '2', { qos: 1 }).then((r) => results.push(r))
    await settle()
    expect(results.length).to.equal(0)
    store.release()
    await Promise.all([first, second])
    expect(results.map((r) => Number(r.id))).to.satisfy((ids: number[]) => ids[0]! < ids[1]!)
    const p1 = await broker.expect('publish')
    const p2 = await broker.expect('publish')
    expect([p1.payload.toString(), p2.payload.toString()]).to.deep.equal(['1', '2'])
  })
})
