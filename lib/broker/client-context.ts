import type { Backend } from '../backend/backend.js'
import type { MqttError } from '../packet/errors.js'
import type { Packet } from '../packet/types.js'
import type { Session } from '../session/session.js'
import type { ConnectionState } from './connection-state.js'
import type { BrokerCore } from './core.js'
import type { DisconnectReason, EventHub } from './events.js'
import type { AuthExchange, ConnectContext, ConnectionControl, HandlerClient, PublishStep } from './handlers/context.js'
import type { Logger } from './logger.js'
import type { ResolvedOptions } from './options.js'
import type { BrokerStats } from './stats.js'

/** What a `ClientContext` forwards to its connection (the `Client`). */
export interface ContextOwner extends HandlerClient, ConnectionControl {
  tenant: string | undefined
  readonly log: Logger
  readonly negotiated: ConnectionState
  /** The session, once CONNECT's session step attached it. */
  readonly currentSession: Session | undefined
  send(packet: Packet): void
  fail(error: MqttError, reason?: DisconnectReason): void
  finishPublish(rest: Promise<PublishStep | undefined>, issued: boolean): void
  incomingBytes(): Buffer | undefined
  outboundCompleted(): void
  disconnected(keepWill: boolean): void
}

/**
 * The handler context of one connection (made once per connection): the broker's services, the
 * connection's negotiated state, and the few actions a handler may take, forwarded to the
 * connection. Handlers get this object, never the connection itself. It holds only its connection
 * and the broker's core (the services are read through them): one small object per connection.
 */
export class ClientContext implements ConnectContext {
  auth: AuthExchange | undefined = undefined
  private readonly owner: ContextOwner
  private readonly core: BrokerCore

  constructor(owner: ContextOwner, core: BrokerCore) {
    this.owner = owner
    this.core = core
  }

  get client(): HandlerClient {
    return this.owner
  }

  get connection(): ConnectionControl {
    return this.owner
  }

  get backend(): Backend {
    return this.core.backend
  }

  get options(): ResolvedOptions {
    return this.core.options
  }

  get stats(): BrokerStats {
    return this.core.stats
  }

  get events(): EventHub {
    return this.core.events
  }

  get state(): ConnectionState {
    return this.owner.negotiated
  }

  get log(): Logger {
    return this.owner.log
  }

  get session(): Session {
    const session = this.owner.currentSession
    if (session === undefined) throw new Error('no session before CONNECT')
    return session
  }

  send(packet: Packet): void {
    this.owner.send(packet)
  }

  fail(error: MqttError, reason?: DisconnectReason): void {
    this.owner.fail(error, reason)
  }

  finishPublish(rest: Promise<PublishStep | undefined>, issued: boolean): void {
    this.owner.finishPublish(rest, issued)
  }

  incomingBytes(): Buffer | undefined {
    return this.owner.incomingBytes()
  }

  outboundCompleted(): void {
    this.owner.outboundCompleted()
  }

  disconnected(keepWill: boolean): void {
    this.owner.disconnected(keepWill)
  }
}
