import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { message } from '../../lib/backend/conformance/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { resolveOptions } from '../../lib/broker/options.js'
import { brokerOptions, listenerConfig, listenerConfigs, memoryOptions, redisOptions, tenantResolver } from '../../lib/config/build.js'
import { withDefaults } from '../../lib/config/effective.js'
import { loadConfigText } from '../../lib/config/load.js'
import { resolveConfig } from '../../lib/config/resolve.js'
import { CONFIG_SCHEMA } from '../../lib/config/schema.js'
import { TenantError } from '../../lib/tenancy/index.js'
import { resolveListeners } from '../../lib/transport/listener-config.js'

const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url))

type Schema = Record<string, unknown>

/** Every key name of the schema, with its dotted path (listener branches merged). */
function keysOf(schema: Schema, prefix: string, out: Map<string, string>): Map<string, string> {
  if (Array.isArray(schema.oneOf)) for (const branch of schema.oneOf as Schema[]) keysOf(branch, prefix, out)
  if (schema.items !== undefined) keysOf(schema.items as Schema, `${prefix}[]`, out)
  for (const [key, sub] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
    const path = prefix === '' ? key : `${prefix}.${key}`
    out.set(path, key)
    keysOf(sub, path, out)
  }
  return out
}

describe('config – schema, defaults, documentation and mapping', () => {
  const keys = keysOf(CONFIG_SCHEMA as unknown as Schema, '', new Map())

  it('the schema defaults of broker: are the engine defaults', () => {
    const backend = new MemoryBackend()
    const fromConfig = resolveOptions({ backend, ...brokerOptions(withDefaults({})) })
    expect(fromConfig).to.deep.equal(resolveOptions({ backend }))
  })

  it('maps every broker: key to its BrokerOptions field', () => {
    const options = brokerOptions({
      shutdown_timeout: 2.5,
      broker: {
        max_packet_size: 1000, connect_timeout: 2000, max_keepalive: 60, server_keep_alive: 30, receive_maximum: 10,
        inflight_window: 20, max_outgoing_queue: 30, max_buffered_bytes: 4096, maximum_qos: 1, retain_available: false,
        wildcard_subscription_available: false, subscription_identifiers_available: false, shared_subscription_available: false,
        topic_alias_maximum: 5, max_session_expiry_interval: 600, validate_payload_format: true, sys_interval: 0,
        sys_topic_prefix: '$SYS/x', timer_interval: 500, max_connect_packet_size: 900, max_outgoing_queue_bytes: 5000,
        max_publisher_pause: 0, send_timeout: 700, refuse_control_characters: false, max_topic_length: 100, max_topic_levels: 8,
        max_subscriptions: 9, max_connections: 10, max_connections_per_listener: 11, max_connections_per_address: 12,
        max_connect_rate_per_address: 13, max_user_properties: 14, persistent_session_expiry: 15, max_heap_used: 16,
        max_event_loop_lag: 17, max_connections_per_tenant: 18, flapping_max_count: 19, flapping_window: 20, flapping_ban_time: 21,
        idle_memory_release: 22
      }
    })
    expect(options).to.deep.equal({
      maximumPacketSize: 1000, connectTimeout: 2000, maxKeepalive: 60, serverKeepAlive: 30, receiveMaximum: 10,
      inflightWindow: 20, maxOutgoingQueue: 30, maxBufferedBytes: 4096, maximumQoS: 1, retainAvailable: false,
      wildcardSubscriptionAvailable: false, subscriptionIdentifiersAvailable: false, sharedSubscriptionAvailable: false,
      topicAliasMaximum: 5, maxSessionExpiryInterval: 600, validatePayloadFormat: true, sysInterval: 0,
      sysTopicPrefix: '$SYS/x', timerInterval: 500, drainTimeout: 2500, maxConnectPacketSize: 900, maxOutgoingQueueBytes: 5000,
      maxPublisherPause: 0, sendTimeout: 700, refuseControlCharacters: false, maxTopicLength: 100, maxTopicLevels: 8,
      maxSubscriptionsPerClient: 9, maxConnections: 10, maxConnectionsPerListener: 11, maxConnectionsPerAddress: 12,
      maxConnectRatePerAddress: 13, maxUserProperties: 14, persistentSessionExpiry: 15, maxHeapUsed: 16, maxEventLoopLag: 17,
      maxConnectionsPerTenant: 18, flappingMaxCount: 19, flappingWindow: 20, flappingBanTime: 21, idleMemoryRelease: 22
    })
    // Every key of the section is mapped (a key added to the schema must be added to the mapping).
    const sectionKeys = [...keys.keys()].filter((k) => k.startsWith('broker.')).length
    expect(Object.keys(options).length - 1).to.equal(sectionKeys)
  })

  it('maps every backend.memory key to its MemoryBackendOptions field, and the schema defaults are the backend defaults', async () => {
    const memoryKeys = [...keys.keys()].filter((k) => k.startsWith('backend.memory.'))
    const options = memoryOptions({
      backend: {
        memory: { max_queued_messages: 1, max_queued_bytes: 2, max_retained_messages: 3, max_retained_bytes: 4, queue_qos0: true, shared_subscription_policy: 'random', expiry_check_interval: 5 }
      }
    })
    expect(options).to.deep.equal({ maxQueuedMessages: 1, maxQueuedBytes: 2, maxRetainedMessages: 3, maxRetainedBytes: 4, queueQoS0: true, sharedSubscriptionPolicy: 'random', expiryCheckInterval: 5 })
    expect(Object.keys(options)).to.have.length(memoryKeys.length)
    // The limits reach the backend: a 10-byte store takes a small retained message, not a large one.
    const backend = new MemoryBackend(memoryOptions({ backend: { memory: { max_retained_bytes: 10 } } }))
    await backend.storeRetained(undefined, message('a', 'x', 0, { retain: true }))
    await backend.storeRetained(undefined, message('b', 'a larger payload', 0, { retain: true }))
    expect(backend.stats.retainedRefused).to.equal(1)
    const defaults = withDefaults({}).backend?.memory
    expect(defaults).to.include({ max_queued_messages: 1000, max_queued_bytes: 16 * 1024 * 1024, max_retained_messages: 100_000, max_retained_bytes: 256 * 1024 * 1024 })
    await backend.close()
  })

  it('maps every backend.redis key to its KeyvBackendOptions field', () => {
    const redisKeys = [...keys.keys()].filter((k) => k.startsWith('backend.redis.'))
    const section = Object.fromEntries(redisKeys.map((k, i) => [k.slice('backend.redis.'.length, undefined), k.endsWith('await_qos0') ? true : k.endsWith('url') ? 'redis://h:1' : i + 1]))
    const options = redisOptions({ backend: { type: 'redis', redis: section } })
    expect(Object.keys(options)).to.have.length(redisKeys.length)
    expect(options).to.include({ url: 'redis://h:1', awaitQos0: true })
    expect(Object.keys(options)).to.include.members(['nodeId', 'prefix', 'namespace', 'maxQueuedMessages', 'maxRetainedMessages', 'commandTimeout', 'connectTimeout', 'heartbeatInterval', 'takeoverTimeout', 'busMaxLength'])
  })

  it('maps listeners to ListenerConfig', () => {
    expect(listenerConfig({ name: 'u', kind: 'unix', path: '/tmp/s', mode: '0660' })).to.deep.equal({ name: 'u', kind: 'unix', socketPath: '/tmp/s', socketMode: 0o660 })
    expect(
      listenerConfig({
        name: 's', kind: 'tls', host: '::', port: 8883, proxy_protocol: true, proxy_timeout: 100, trusted_proxies: ['10.0.0.0/8'],
        tls: { key: 'k', cert: 'c', ca: 'a', passphrase: 'p', client_certificates: 'required', username_from: 'cn', min_version: 'TLSv1.3', ciphers: 'HIGH', watch: false, handshake_timeout: 50 }
      })
    ).to.deep.equal({
      name: 's', kind: 'tls', host: '::', port: 8883, proxyProtocol: true, proxyTimeout: 100, trustedProxies: ['10.0.0.0/8'],
      tls: { key: 'k', cert: 'c', ca: 'a', passphrase: 'p', clientCertificates: 'required', usernameFrom: 'cn', minVersion: 'TLSv1.3', ciphers: 'HIGH', watch: false, handshakeTimeout: 50 }
    })
    expect(listenerConfig({ name: 'w', kind: 'wss', path: '/m', tls: { key: 'k', cert: 'c' } })).to.deep.equal({ name: 'w', kind: 'wss', path: '/m', tls: { key: 'k', cert: 'c' } })
  })

  it('examples/broker.yaml passes every check once its certificate files exist', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mqtt-example-'))
    try {
      await copyFile(root('examples/broker.yaml'), join(dir, 'broker.yaml'))
      await mkdir(join(dir, 'certs'))
      for (const name of ['server.key', 'server.crt', 'ca.crt']) await writeFile(join(dir, 'certs', name), 'pem')
      await writeFile(join(dir, 'users.passwd'), '')
      await writeFile(join(dir, 'acl.conf'), '')
      const { config } = await resolveConfig({ argv: ['--config', 'broker.yaml'], env: {}, cwd: dir })
      expect(config.listeners).to.have.length(5)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('the listeners of the example file are listeners the transports accept', () => {
    const config = withDefaults(loadConfigText(readFileSync(root('examples/broker.yaml'), 'utf8'), 'examples/broker.yaml'))
    const resolved = resolveListeners(listenerConfigs(config))
    expect(resolved.map((l) => `${l.name!}:${l.kind}:${l.port}`)).to.deep.equal(['mqtt:tcp:1883', 'secure:tls:8883', 'web:ws:8080', 'web-secure:wss:8443', 'local:unix:0'])
  })

  it('builds the tenant resolver of tenancy:', async () => {
    const request = { clientId: 'acme:dev', username: 'alice#globex', listener: 'edge', protocolLevel: 5 as const }
    expect(tenantResolver({ tenancy: { by: 'none' } })).to.equal(undefined)
    expect(await tenantResolver({ tenancy: { by: 'username', separator: '#' } })!(request)).to.deep.equal({ tenant: 'globex', clientId: 'acme:dev', username: 'alice' })
    expect(await tenantResolver({ tenancy: { by: 'client_id', strip: false } })!(request)).to.deep.equal({ tenant: 'acme', clientId: 'acme:dev', username: 'alice#globex' })
    expect(await tenantResolver({ tenancy: { by: 'listener', listeners: { edge: 'initech' } } })!(request)).to.include({ tenant: 'initech' })
    expect(await tenantResolver({ tenancy: { by: 'listener', listeners: {}, unknown_listener: 'refuse' } })!(request)).to.be.instanceOf(TenantError)
    expect(await tenantResolver({ tenancy: { by: 'fixed', tenant: 'solo' } })!(request)).to.include({ tenant: 'solo' })
  })

  it('docs/configuration.md names every key', () => {
    const doc = readFileSync(root('docs/configuration.md'), 'utf8')
    // The key in backticks, alone or with (part of) its section: `level`, `log.level`, `redis.url`.
    const named = (path: string): boolean => {
      const parts = path.replace(/\[\]/g, '').split('.')
      return parts.some((_, i) => doc.includes(`\`${parts.slice(i).join('.')}\``))
    }
    const missing = [...keys.keys()].filter((path) => !named(path))
    expect(missing).to.deep.equal([])
  })

  it('examples/broker.yaml is valid and shows every key', () => {
    const text = readFileSync(root('examples/broker.yaml'), 'utf8')
    loadConfigText(text, 'examples/broker.yaml')
    const missing = [...keys].filter(([, key]) => !new RegExp(`(^|[\\s{,])${key}:`, 'm').test(text))
    expect(missing.map(([path]) => path)).to.deep.equal([])
  })
})
