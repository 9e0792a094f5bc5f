/**
 * Property: every promise the client hands out settles, whatever happens — random publishes
 * (QoS 0/1/2), subscribes and unsubscribes, aborts before and after sending, broker answers
 * (success or failure codes, PUBREC/PUBREL/PUBCOMP), dropped connections, reconnects with or
 * without a session, and a final stop(). Nothing may be left pending, and no promise may settle
 * twice (each settle callback is counted).
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { Service } from '../../lib/client/service.js'
import type { Packet } from '../../lib/packet/index.js'
import { ScriptedBroker } from './helpers/scripted-broker.js'
import type { BrokerConnection } from './helpers/scripted-broker.js'
import { VirtualClock, settle } from './helpers/virtual-clock.js'

type Action =
  | { kind: 'publish'; qos: 0 | 1 | 2 }
  | { kind: 'subscribe' }
  | { kind: 'unsubscribe' }
  | { kind: 'abort'; which: number }
  | { kind: 'answer'; which: number; fail: boolean }
  | { kind: 'drop' }
  | { kind: 'time'; ms: number }

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant('publish' as const), qos: fc.constantFrom(0 as const, 1 as const, 2 as const) }),
  fc.record({ kind: fc.constant('subscribe' as const) }),
  fc.record({ kind: fc.constant('unsubscribe' as const) }),
  fc.record({ kind: fc.constant('abort' as const), which: fc.nat() }),
  fc.record({ kind: fc.constant('answer' as const), which: fc.nat(), fail: fc.boolean() }),
  fc.record({ kind: fc.constant('drop' as const) }),
  fc.record({ kind: fc.constant('time' as const), ms: fc.integer({ min: 100, max: 5000 }) })
)

/** Answer one received packet the way a broker might. */
function answer(conn: BrokerConnection, packet: Packet, fail: boolean, v5: boolean): void {
  switch (packet.type) {
    case 'publish':
      if (packet.qos === 1) conn.send({ type: 'puback', packetId: packet.packetId!, reasonCode: fail && v5 ? 0x87 : 0 })
      else if (packet.qos === 2) conn.send({ type: 'pubrec', packetId: packet.packetId!, reasonCode: fail && v5 ? 0x97 : 0 })
      return
    case 'pubrel':
      conn.send({ type: 'pubcomp', packetId: packet.packetId })
      return
    case 'subscribe':
      conn.send({ type: 'suback', packetId: packet.packetId, reasonCodes: packet.subscriptions.map(() => (fail ? 0x80 : 1)) })
      return
    case 'unsubscribe':
      conn.send({ type: 'unsuback', packetId: packet.packetId, reasonCodes: v5 ? packet.topicFilters.map(() => 0) : undefined })
      return
    default:
  }
}

describe('client – every promise settles (property)', function () {
  this.timeout(120_000)

  it('settles every promise exactly once under random aborts, disconnects and broker answers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 40 }), fc.constantFrom(4 as const, 5 as const), fc.boolean(), async (actions, level, sessionPresent) => {
        const scripted = new ScriptedBroker()
        const clock = new VirtualClock()
        const service = new Service({ dialer: scripted.dialer, clock, protocolVersion: level, clientId: 'p', clean: false, random: () => 0.5, reconnect: { minDelayMs: 100, maxDelayMs: 1000 }, offline: { maxMessages: 20, qos0MaxMessages: 5 } })
        const settled: number[] = []
        const pending: Promise<unknown>[] = []
        const controllers: AbortController[] = []
        const track = (p: Promise<unknown>): void => {
          const index = settled.push(0) - 1
          pending.push(p.then(() => settled[index]!++, () => settled[index]!++))
        }
        let conn: BrokerConnection | undefined
        const unanswered: Packet[] = []
        const pollBroker = async (): Promise<void> => {
          await settle(2)
          if (conn === undefined || conn.closed) {
            conn = undefined
            const next = await scripted.next(1).catch(() => undefined)
            if (next !== undefined) {
              conn = next
              unanswered.length = 0
            }
          }
          if (conn === undefined) return
          for (const packet of conn.received.splice(0)) {
            if (packet.type === 'connect') conn.send({ type: 'connack', sessionPresent, reasonCode: 0 })
            else if (packet.type === 'pingreq') conn.send({ type: 'pingresp' })
            else if (packet.type !== 'disconnect') unanswered.push(packet)
          }
          await settle(2)
        }
        await service.start()
        for (const a of actions) {
          await pollBroker()
          switch (a.kind) {
            case 'publish': {
              const controller = new AbortController()
              controllers.push(controller)
              track(service.publish('t/x', 'p', { qos: a.qos, signal: controller.signal }))
              break
            }
            case 'subscribe': {
              const controller = new AbortController()
              controllers.push(controller)
              track(service.subscribe({ topicFilter: 't/#', qos: 1 }, { signal: controller.signal }))
              break
            }
            case 'unsubscribe':
              track(service.unsubscribe('t/#'))
              break
            case 'abort':
              if (controllers.length > 0) controllers[a.which % controllers.length]!.abort()
              break
            case 'answer':
              if (conn !== undefined && unanswered.length > 0) answer(conn, unanswered.splice(a.which % unanswered.length, 1)[0]!, a.fail, level === 5)
              break
            case 'drop':
              conn?.end()
              break
            case 'time':
              await clock.advance(a.ms)
              break
          }
        }
        await pollBroker()
        const stopping = service.stop()
        await clock.advance(0)
        await stopping
        let timer: NodeJS.Timeout | undefined
        const outcome = await Promise.race([
          Promise.all(pending).then(() => 'all settled'),
          new Promise((resolve) => (timer = setTimeout(() => resolve('still pending'), 2000)))
        ])
        clearTimeout(timer)
        expect(outcome).to.equal('all settled')
        expect(settled.every((n) => n === 1)).to.equal(true)
      }),
      { numRuns: 60 }
    )
  })
})
