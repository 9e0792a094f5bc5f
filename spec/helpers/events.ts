/**
 * Positive events for the specs to await instead of sleeping or watching a quiet window:
 *
 * - `ended(broker, clientId)`: the teardown of a connection is over (`client.ended`: leftovers
 *   queued, will published or delayed, backend told);
 * - `pingPong(peer)`: a PINGREQ round trip on the same connection — whatever the broker had queued
 *   for it before arrives first, so "nothing came" means nothing was sent;
 * - `sentinelNext(broker, peer, topic)`: a message published after the one that must not arrive is
 *   the next thing the subscriber gets.
 */
import { expect } from 'chai'
import { filter, firstValueFrom, timeout } from 'rxjs'
import type { Broker } from '../../lib/broker/broker.js'
import type { BrokerEvent } from '../../lib/broker/events.js'
import type { Packet } from '../../lib/packet/types.js'
import type { Peer } from './flow.js'

/**
 * Resolves with the first `client.ended` of `clientId` (of `tenant`) from now on; rejects after
 * `ms` of real time. Call it before the action that ends the connection.
 */
export function ended(broker: Broker, clientId: string, tenant?: string, ms = 5000): Promise<BrokerEvent> {
  return firstValueFrom(
    broker.events$.pipe(
      filter((e) => e.type === 'client.ended' && e.client.clientId === clientId && e.client.tenant === tenant),
      timeout({ first: ms, with: () => Promise.reject(new Error(`no client.ended of ${clientId} within ${ms} ms`)) })
    )
  )
}

/**
 * PINGREQ, and every packet `peer` gets before its PINGRESP: what the broker had sent it until it
 * read the PINGREQ (in order on one connection), with no time window.
 */
export async function beforePong(peer: Peer): Promise<Packet[]> {
  peer.send({ type: 'pingreq' })
  const out: Packet[] = []
  for (;;) {
    const packet = await peer.next()
    if (packet.type === 'pingresp') return out
    out.push(packet)
  }
}

/** PINGREQ, and the next packet is its PINGRESP: nothing else was sent to `peer` before. */
export async function pingPong(peer: Peer, what = 'nothing before PINGRESP'): Promise<void> {
  expect(await beforePong(peer), what).to.deep.equal([])
}

let sentinels = 0

/**
 * Publishes a QoS 0 sentinel on `topic` through the broker (inline) and expects it to be the next
 * packet `peer` gets (which must be subscribed to `topic`): nothing else came on the way first.
 */
export async function sentinelNext(broker: Broker, peer: Peer, topic: string, tenant?: string): Promise<void> {
  const payload = `sentinel ${++sentinels}`
  await broker.publish(tenant === undefined ? { topic, payload } : { topic, payload, tenant })
  const got = await peer.next()
  expect(got, `the sentinel first on ${topic}`).to.deep.include({ type: 'publish', topic, payload: Buffer.from(payload) })
}
