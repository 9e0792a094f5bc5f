import { ReasonCode } from '../../packet/reason-codes.js'
import type { ConnectStep } from './context.js'
import { refuse } from './refuse.js'

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
    const code = ctx.connection.admission.admitIdentified(ctx.client, { tenant: ctx.connection.tenant, clientId: ctx.client.clientId })
    return code === undefined ? true : refuse(flow, code, code === ReasonCode.Banned ? 'banned for flapping' : 'too many connections in this tenant')
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
    return ctx.connection.admission.flapped({ tenant: ctx.connection.tenant, clientId: ctx.client.clientId })
      ? refuse(flow, ReasonCode.Banned, 'banned for flapping')
      : true
  }
}
