import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { BackendInspection } from '../backend/inspection.js'
import type { Broker } from '../broker/broker.js'
import { ReasonCode } from '../packet/reason-codes.js'
import { isPromise } from '../util/awaitable.js'

/** Options of `createBrokerMetrics`. */
export interface BrokerMetricsOptions {
  /**
   * Most tenants with their own series (label `tenant`); the others are summed under `_other`
   * (default 100; 0: every tenant under `_all`). The default tenant is `_default`.
   */
  tenantLimit?: number
  /** prom-client's default Node.js metrics: event-loop lag, GC, heap, CPU (default true). */
  defaultMetrics?: boolean
  /** Register into this registry instead of a new one. */
  registry?: Registry
}

/** The label of the default tenant (valid tenant ids never start with `_`). */
export const DEFAULT_TENANT_LABEL = '_default'
/** The label of the tenants beyond the limit. */
export const OTHER_TENANT_LABEL = '_other'

/** Reason code → label, e.g. 0x86 → "bad_user_name_or_password". */
const REASON_LABELS = new Map<number, string>()
for (const [name, code] of Object.entries(ReasonCode)) {
  if (!REASON_LABELS.has(code)) REASON_LABELS.set(code, name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase())
}

/**
 * Bounded tenant labels: the first `limit` tenants seen keep their own label for the life of the
 * registry, the rest share `_other`.
 */
class TenantLabels {
  readonly #own = new Set<string>()
  constructor(readonly limit: number) {}

  of(tenant: string | undefined): string {
    if (this.limit === 0) return '_all'
    if (tenant === undefined) return DEFAULT_TENANT_LABEL
    if (this.#own.has(tenant)) return tenant
    if (this.#own.size < this.limit) {
      this.#own.add(tenant)
      return tenant
    }
    return OTHER_TENANT_LABEL
  }
}

/** The totals of `BackendInspection.counts`. */
const COUNT_FIELDS = ['sessions', 'subscriptions', 'retained', 'queued', 'inflight'] as const
type CountField = (typeof COUNT_FIELDS)[number]

/** Adds `value` to `label`'s entry. */
function add<K>(map: Map<K, number>, key: K, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value)
}

/** `snake_case` of a camelCase counter name. */
function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()
}

/**
 * A prom-client registry with the broker's metrics. Every value is read from the broker's existing
 * counters when Prometheus scrapes (`collect` callbacks): nothing is added to the message path.
 * Names follow Prometheus conventions (`mqtt_` prefix, `_total` for counters, base units); see
 * docs/http-api.md for the list.
 */
export function createBrokerMetrics(broker: Broker, options: BrokerMetricsOptions = {}): Registry {
  const registry = options.registry ?? new Registry()
  const tenants = new TenantLabels(options.tenantLimit ?? 100)
  const registers = [registry]
  const stats = broker.stats
  const backend = broker.backend as typeof broker.backend & BackendInspection & { stats?: Record<string, unknown>; available?: unknown }

  const probe = new Histogram({
    name: 'mqtt_backend_probe_duration_seconds',
    help: 'Time the backend took to answer the inspection probe of a scrape (its stored totals)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: []
  })
  // Backend totals per tenant are read once per scrape and shared by the five gauges below.
  let counts: Promise<Map<string, Partial<Record<CountField, number>>>> | undefined
  // The first of the five gauges (registered first, so collected first) reads afresh; the others
  // reuse its answer: one probe per scrape.
  const backendCounts = (fresh: boolean): NonNullable<typeof counts> => {
    if (counts !== undefined && !fresh) return counts
    counts = (async () => {
      const out = new Map<string, Partial<Record<CountField, number>>>()
      if (backend.counts === undefined || backend.available === false) return out
      const end = probe.startTimer()
      try {
        const listed = backend.listTenants === undefined ? [undefined] : backend.listTenants()
        const list = isPromise(listed) ? await listed : listed
        for (const tenant of list) {
          const c = backend.counts(tenant)
          const value = isPromise(c) ? await c : c
          const label = tenants.of(tenant)
          const sum = out.get(label) ?? {}
          for (const field of COUNT_FIELDS) {
            const n = value[field]
            if (n !== undefined) sum[field] = (sum[field] ?? 0) + n
          }
          out.set(label, sum)
        }
      } catch {
        // An unreachable backend: no totals this scrape (mqtt_backend_up says why).
      } finally {
        end()
      }
      return out
    })()
    return counts
  }
  const storedGauge = (name: string, help: string, field: CountField): void => {
    const fresh = field === 'sessions'
    new Gauge({
      name,
      help,
      labelNames: ['tenant'],
      registers,
      async collect() {
        this.reset()
        const all = await backendCounts(fresh)
        for (const [tenant, c] of all) {
          const n = c[field]
          if (n !== undefined) this.set({ tenant }, n)
        }
      }
    })
  }

  new Gauge({
    name: 'mqtt_connections',
    help: 'Connected MQTT clients (CONNECT accepted, not closed), by listener and tenant',
    labelNames: ['listener', 'tenant'],
    registers,
    collect() {
      this.reset()
      const byListener = new Map<string, Map<string | undefined, number>>()
      for (const client of broker.connectedClients) {
        const listener = client.listener ?? client.transport
        let byTenant = byListener.get(listener)
        if (byTenant === undefined) byListener.set(listener, (byTenant = new Map()))
        byTenant.set(client.tenant, (byTenant.get(client.tenant) ?? 0) + 1)
      }
      for (const [listener, byTenant] of byListener) {
        const sums = new Map<string, number>()
        for (const [tenant, n] of byTenant) add(sums, tenants.of(tenant), n)
        for (const [tenant, n] of sums) this.set({ listener, tenant }, n)
      }
    }
  })
  new Gauge({
    name: 'mqtt_sockets',
    help: 'Open network connections, including those that have not sent CONNECT yet',
    registers,
    collect() {
      this.set(stats.connectionsOpen)
    }
  })
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset()
        this.inc(read())
      }
    })
  }
  counter('mqtt_connections_total', 'Network connections accepted', () => stats.connectionsAccepted)
  counter('mqtt_connects_total', 'CONNECTs accepted', () => stats.clientsConnected)
  new Counter({
    name: 'mqtt_connections_refused_total',
    help: 'CONNECTs refused, by reason (MQTT 5 reason code name)',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset()
      for (const [code, n] of stats.connectsRefused) this.inc({ reason: REASON_LABELS.get(code) ?? `0x${code.toString(16)}` }, n)
    }
  })
  const byQos = (name: string, help: string, read: () => [number, number, number]): void => {
    new Counter({
      name,
      help,
      labelNames: ['qos'],
      registers,
      collect() {
        this.reset()
        const values = read()
        for (let qos = 0; qos < 3; qos++) this.inc({ qos: String(qos) }, values[qos] ?? 0)
      }
    })
  }
  byQos('mqtt_messages_received_total', 'PUBLISH packets received from clients, by QoS', () => stats.publishesReceivedByQos)
  byQos('mqtt_messages_sent_total', 'PUBLISH packets sent to clients, by QoS', () => stats.publishesSentByQos)
  const perTenant = (name: string, help: string, read: () => Map<string | undefined, number>): void => {
    new Counter({
      name,
      help,
      labelNames: ['tenant'],
      registers,
      collect() {
        this.reset()
        const sums = new Map<string, number>()
        for (const [tenant, n] of read()) add(sums, tenants.of(tenant), n)
        for (const [tenant, n] of sums) this.inc({ tenant }, n)
      }
    })
  }
  const pick = <T>(map: ReadonlyMap<string | undefined, T>, f: (v: T) => number): Map<string | undefined, number> =>
    new Map([...map].map(([k, v]) => [k, f(v)]))
  // Read from the sockets once per scrape (received first, sent reuses it): a socket's byte
  // counts are not free to read.
  let traffic = new Map<string | undefined, { received: number; sent: number }>()
  perTenant('mqtt_bytes_received_total', 'Bytes received from clients (TCP, TLS and Unix socket connections), by tenant', () => {
    traffic = broker.trafficBytes()
    return pick(traffic, (b) => b.received)
  })
  perTenant('mqtt_bytes_sent_total', 'Bytes sent to clients (TCP, TLS and Unix socket connections), by tenant', () => pick(traffic, (b) => b.sent))
  perTenant('mqtt_tenant_messages_received_total', 'PUBLISH packets received, by tenant (while $SYS is on)', () => pick(broker.tenantTraffic(), (c) => c.received))
  perTenant('mqtt_tenant_messages_sent_total', 'PUBLISH packets sent, by tenant (while $SYS is on)', () => pick(broker.tenantTraffic(), (c) => c.sent))
  new Counter({
    name: 'mqtt_deliveries_dropped_total',
    help: 'Deliveries dropped, by reason',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset()
      for (const [reason, n] of Object.entries(stats.droppedByReason)) this.inc({ reason: reason.replace(/-/g, '_') }, n)
    }
  })
  counter('mqtt_deliveries_queued_total', "Deliveries held in a client's outgoing queue (inflight window full)", () => stats.deliveriesQueued)
  counter('mqtt_slow_consumers_total', 'Clients disconnected because their outgoing queue overflowed', () => stats.slowConsumers)
  counter('mqtt_backpressure_pauses_total', "Publisher pauses because a receiver's socket had too much unsent output", () => stats.backpressurePauses)
  counter('mqtt_tenant_connection_limit_hits_total', 'Connections refused for maxConnectionsPerTenant (0x97)', () => stats.tenantConnectionLimitHits)
  counter('mqtt_flapping_bans_total', 'Client ids banned for flapping (flappingMaxCount within flappingWindow)', () => stats.flappingBans)
  counter('mqtt_protocol_errors_total', 'Connections closed for a malformed packet or a protocol violation', () => stats.protocolErrors)
  new Gauge({
    name: 'mqtt_delayed_wills',
    help: 'Wills waiting for their MQTT 5 Will Delay Interval in this process',
    registers,
    collect() {
      this.set(broker.delayedWillCount)
    }
  })
  storedGauge('mqtt_sessions', 'Stored sessions (connected or away), by tenant', 'sessions')
  storedGauge('mqtt_subscriptions', 'Subscriptions of stored sessions, by tenant', 'subscriptions')
  storedGauge('mqtt_retained_messages', 'Retained messages, by tenant', 'retained')
  storedGauge('mqtt_queued_messages', 'Messages in offline queues, by tenant', 'queued')
  storedGauge('mqtt_inflight_messages', 'Outgoing QoS 1/2 exchanges not completed, by tenant', 'inflight')
  new Gauge({
    name: 'mqtt_backend_up',
    help: 'Whether the backend is reachable (1) or not (0); Redis availability for the Redis backend',
    registers,
    collect() {
      this.set(backend.available === false ? 0 : 1)
    }
  })
  new Counter({
    name: 'mqtt_backend_events_total',
    help: "The backend's own counters (published, delivered, queued, takeovers, ...), by event",
    labelNames: ['event'],
    registers,
    collect() {
      this.reset()
      const s = backend.stats
      if (s === undefined || typeof s !== 'object') return
      for (const [name, value] of Object.entries(s)) if (typeof value === 'number') this.inc({ event: snake(name) }, value)
    }
  })
  // Registered last: it is observed while the gauges above collect, so a scrape shows its own probe.
  registry.registerMetric(probe)
  if (options.defaultMetrics !== false) {
    // prom-client's runtime metrics, without those that walk every handle (one per socket: at
    // thousands of connections they cost more than all the rest; mqtt_sockets counts them).
    const runtime = new Registry()
    collectDefaultMetrics({ register: runtime })
    for (const { name } of runtime.getMetricsAsArray()) {
      const metric = runtime.getSingleMetric(name)
      if (metric !== undefined && !name.startsWith('nodejs_active_')) registry.registerMetric(metric)
    }
  }
  return registry
}
