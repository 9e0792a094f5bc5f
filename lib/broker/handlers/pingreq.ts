import type { HandlerContext } from './context.js'

/** PINGREQ: answer PINGRESP [MQTT-3.12.4-1]. (Any packet already counted as keepalive activity.) */
export function handlePingreq(ctx: HandlerContext): void {
  ctx.send({ type: 'pingresp' })
}
