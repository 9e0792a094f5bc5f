import { ProtocolError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { isValidTopicFilter } from '../../packet/topic.js'
import type { UnsubscribePacket } from '../../packet/types.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { HandlerContext } from './context.js'

/**
 * UNSUBSCRIBE: remove subscriptions through the backend and answer UNSUBACK with the same packet id
 * [MQTT-3.10.4-4], even when nothing matched [MQTT-3.10.4-5]. MQTT 5 gets one reason code per
 * filter: 0x00, 0x11 (no subscription existed), 0x8F for an invalid filter. 3.1 and 3.1.1 have no
 * code to say a filter is invalid (empty [MQTT-4.7.3-1], misplaced wildcards [MQTT-4.7.1-2]
 * [MQTT-4.7.1-3]): an UNSUBACK would report success for an invalid request, so the connection
 * closes instead [MQTT-4.8.0-1].
 */
export function handleUnsubscribe(ctx: HandlerContext, packet: UnsubscribePacket): Awaitable<void> {
  const filters = packet.topicFilters
  const codes: number[] = new Array<number>(filters.length)
  const valid: string[] = []
  const positions: number[] = []
  for (let i = 0; i < filters.length; i++) {
    const filter = filters[i]!
    if (isValidTopicFilter(filter)) {
      valid.push(filter)
      positions.push(i)
    } else if (ctx.client.protocolLevel === 5) {
      codes[i] = ReasonCode.TopicFilterInvalid
    } else {
      ctx.fail(new ProtocolError(`UNSUBSCRIBE with the invalid topic filter ${JSON.stringify(filter)} [MQTT-4.7.3-1]`))
      return
    }
  }
  if (valid.length === 0) return unsuback(ctx, packet.packetId, codes, valid, positions, [])
  const results = ctx.backend.unsubscribe(ctx.client, valid)
  if (isPromise(results)) return results.then((r) => unsuback(ctx, packet.packetId, codes, valid, positions, r))
  return unsuback(ctx, packet.packetId, codes, valid, positions, results)
}

function unsuback(
  ctx: HandlerContext,
  packetId: number,
  codes: number[],
  valid: string[],
  positions: number[],
  results: number[]
): void {
  for (let k = 0; k < positions.length; k++) codes[positions[k]!] = results[k] ?? ReasonCode.UnspecifiedError
  // The encoder leaves the reason codes out at levels 3 and 4.
  ctx.send({ type: 'unsuback', packetId, reasonCodes: codes })
  if (ctx.events.observed) ctx.events.emit({ type: 'unsubscribed', client: ctx.client, topicFilters: valid, results })
}
