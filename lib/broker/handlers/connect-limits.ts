import { ConnectReturnCode, ReasonCode } from '../../packet/reason-codes.js'
import type { ConnectContext } from './context.js'
import type { ConnectStep } from './connect.js'

/**
 * The connection limits that need the CONNECT's identity (after tenant resolution and the client
 * id checks, before authentication): a client id banned for flapping gets 0x8A Banned (3.1.1: 5
 * Not authorized), a tenant at `maxConnectionsPerTenant` gets 0x97 Quota exceeded (3.1.1: 3 Server
 * unavailable). See `Admission.admitIdentified`.
 */
export const admitIdentified: ConnectStep = {
  name: 'admitIdentified',
  run(flow) {
    const { ctx } = flow
    const code = ctx.admission.admitIdentified(ctx.handle, { tenant: ctx.tenant, clientId: ctx.clientId })
    return code === undefined ? true : refuse(ctx, code)
  }
}

/**
 * Flapping detection, after authentication (an unauthenticated client cannot get another's id
 * banned): this connection counts, and one too many within the window starts a ban (0x8A).
 */
export const countFlapping: ConnectStep = {
  name: 'countFlapping',
  run(flow) {
    const { ctx } = flow
    return ctx.admission.flapped({ tenant: ctx.tenant, clientId: ctx.clientId }) ? refuse(ctx, ReasonCode.Banned) : true
  }
}

function refuse(ctx: ConnectContext, code: number): false {
  const banned = code === ReasonCode.Banned
  const reasonString = banned ? 'banned for flapping' : 'too many connections in this tenant'
  ctx.log.info('CONNECT refused', { clientId: ctx.clientId, reasonCode: code, reasonString })
  if (ctx.protocolLevel === 5) {
    ctx.refuse({ type: 'connack', sessionPresent: false, reasonCode: code, properties: { reasonString } }, 5)
  } else {
    const returnCode = banned ? ConnectReturnCode.NotAuthorized : ConnectReturnCode.ServerUnavailable
    ctx.refuse({ type: 'connack', sessionPresent: false, reasonCode: returnCode }, ctx.protocolLevel)
  }
  return false
}
