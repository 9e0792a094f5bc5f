import type { FlappingVerdict } from '../../backend/backend.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { Identified } from '../admission.js'
import type { ConnectFlow, ConnectStep } from './context.js'
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
 * banned): this connection counts, and one too many within the window starts a ban (0x8A). A
 * backend shared by several processes counts and bans cluster-wide (`Backend.countFlapping`), so a
 * client cannot escape its ban by connecting to another process; otherwise (or when that fails)
 * this process counts alone.
 */
export const countFlapping: ConnectStep = {
  name: 'countFlapping',
  run(flow) {
    const { ctx } = flow
    const admission = ctx.connection.admission
    const identity: Identified = { tenant: ctx.connection.tenant, clientId: ctx.client.clientId }
    const rule = admission.flappingRule
    const backend = ctx.backend
    const local = (): boolean => (admission.flapped(identity) ? refuse(flow, ReasonCode.Banned, 'banned for flapping') : true)
    if (rule === undefined || backend.countFlapping === undefined) return local()
    const shared = (verdict: FlappingVerdict | undefined): boolean =>
      verdict === undefined ? local() : admission.sharedFlapping(identity, verdict) ? refuse(flow, ReasonCode.Banned, 'banned for flapping') : true
    let verdict: Awaitable<FlappingVerdict | undefined>
    try {
      verdict = backend.countFlapping(ctx.client, rule)
    } catch (error) {
      return failed(flow, error, local)
    }
    return isPromise(verdict) ? verdict.then(shared, (error: unknown) => failed(flow, error, local)) : shared(verdict)
  }
}

/** The backend could not count: this process counts alone (logged), rather than refusing the CONNECT. */
function failed(flow: ConnectFlow, error: unknown, local: () => boolean): boolean {
  flow.ctx.log.warn('shared flapping detection failed: counted by this process only', { clientId: flow.ctx.client.clientId, error })
  return local()
}
