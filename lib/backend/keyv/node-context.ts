import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { createKeyv } from '@keyv/redis'
import type Keyv from 'keyv'
import type { DeliveryResult } from '../backend.js'
import { escapeControlCharacters } from '../../util/control-characters.js'
import type { KeyvSessionContext } from './keyv-session.js'
import { NodeKeys, TenantKeys, validateRootPrefix, validateTenant } from './keys.js'
import { TenantState } from './local-state.js'
import { newStats } from './options.js'
import type { KeyvBackendOptions, KeyvBackendStats } from './options.js'
import { BackendUnavailableError } from './redis-link.js'
import type { RedisLink } from './redis-link.js'

/** A log function of the Redis backend (control characters already escaped). */
export type KeyvLog = (level: 'info' | 'warn' | 'error', message: string) => void

/**
 * What every part of one `KeyvBackend` node shares: its settings (read once from the options),
 * counters, log, the Redis link once started, the tenants it has met, and the two gates every
 * operation goes through (`use`, `tenant`). Internal to `KeyvBackend`; it imports none of the parts.
 */
export class NodeContext {
  readonly nodeId: string
  readonly stats: KeyvBackendStats = newStats()
  readonly keyv: Keyv
  /** The Keyv (and its Redis client) was made here from `url`: closed with the backend. */
  readonly ownsKeyv: boolean
  readonly root: string
  readonly nodeKeys: NodeKeys
  readonly defaultTenant: string
  readonly maxQueued: number
  readonly maxRetained: number
  readonly maxQueuedBytes: number
  readonly maxRetainedBytes: number
  readonly heartbeatMs: number
  readonly takeoverTimeout: number
  /** `MAXLEN ~` of the node and shared-subscription streams. */
  readonly busMax: string
  readonly commandTimeout: number
  readonly connectTimeout: number
  readonly awaitQos0: boolean
  readonly log: KeyvLog
  /** Tenants met on this node, by id. */
  readonly tenants = new Map<string, TenantState>()
  /** Set once by the facade: the start-up every operation waits for. */
  ready: Promise<void> = Promise.resolve()
  /** The Redis link, once the start-up connected. */
  link: RedisLink | undefined = undefined
  /** What sessions need of the node, once the start-up connected. */
  sessionContext: KeyvSessionContext | undefined = undefined
  closed = false

  constructor(options: KeyvBackendOptions) {
    if (options.keyv === undefined && options.url === undefined) throw new TypeError('KeyvBackend needs `keyv` or `url`')
    this.nodeId = options.nodeId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
    if (this.nodeId.length === 0 || /[\s{}]/.test(this.nodeId)) throw new TypeError(`invalid node id ${JSON.stringify(this.nodeId)}`)
    this.root = validateRootPrefix(options.prefix ?? 'mq')
    this.nodeKeys = new NodeKeys(this.root)
    this.defaultTenant = validateTenant(options.namespace ?? 'default')
    this.ownsKeyv = options.keyv === undefined
    this.keyv = options.keyv ?? (createKeyv(options.url as string, { throwOnErrors: true }) as unknown as Keyv)
    // Keyv re-emits adapter errors (twice each); availability is reported once by this backend instead.
    if (this.ownsKeyv) this.keyv.on('error', () => undefined)
    this.maxQueued = options.maxQueuedMessages ?? 1000
    this.maxRetained = options.maxRetainedMessages ?? 100_000
    this.maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024
    this.maxRetainedBytes = options.maxRetainedBytes ?? 256 * 1024 * 1024
    this.heartbeatMs = options.heartbeatInterval ?? 2000
    this.takeoverTimeout = options.takeoverTimeout ?? 3000
    this.busMax = String(options.busMaxLength ?? 100_000)
    this.commandTimeout = options.commandTimeout ?? 5000
    this.connectTimeout = options.connectTimeout ?? 10_000
    this.awaitQos0 = options.awaitQos0 ?? false
    // Messages may quote client ids: control characters are escaped, whoever writes the line.
    const log = options.log ?? ((level, message) => (level === 'info' ? undefined : console.error(`[KeyvBackend] ${message}`)))
    this.log = (level, message) => log(level, escapeControlCharacters(message))
  }

  /** How long a node may stay silent before the others take it for dead (ms): 3 heartbeats. */
  get deadAfterMs(): number {
    return 3 * this.heartbeatMs
  }

  /** The tenant id of a client or message (`undefined`: the default tenant). */
  tenantId(id: string | undefined): string {
    return id ?? this.defaultTenant
  }

  /** Counts what `deliver` answered (bound once: passed to the delivery helpers). */
  readonly count = (result: DeliveryResult): void => {
    if (result === 'dropped') this.stats.deliveryDropped++
    else this.stats.delivered++
  }

  /** The link once started; rejects with `BackendUnavailableError` while Redis is away. */
  async use(): Promise<RedisLink> {
    if (this.closed) throw new BackendUnavailableError('the backend is closed')
    try {
      await this.ready
    } catch (error) {
      throw new BackendUnavailableError('the Redis backend failed to start', error)
    }
    const link = this.link as RedisLink
    if (!link.available) throw new BackendUnavailableError()
    return link
  }

  /** The tenant state, its wildcard filter snapshot loaded. */
  async tenant(id: string | undefined): Promise<TenantState> {
    const tenantId = this.tenantId(id)
    let tenant = this.tenants.get(tenantId)
    if (tenant === undefined) {
      tenant = new TenantState(new TenantKeys(this.root, validateTenant(tenantId)))
      this.tenants.set(tenantId, tenant)
    }
    if (tenant.loadedAt !== undefined) return tenant
    tenant.loading ??= tenant.load(this.link as RedisLink, this.nodeKeys.routeLog)
    await tenant.loading
    return tenant
  }
}
