/**
 * From parsed flags to what `mqttc` does: the broker URL and client options, the mode (publish,
 * subscribe, both, request/response, health check), the payload source, the subscription and the
 * output. Every inconsistency is a `UsageError` (exit 2) before anything connects.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { rootCertificates } from 'node:tls'
import type { ConnectionOptions } from 'node:tls'
import type { ClientOptions, SubscribeRequest, WillOptions } from '../client/index.js'
import type { ConnectProperties, ProtocolLevel, PublishProperties, QoS, UserProperty, WillProperties } from '../packet/index.js'
import { UsageError, durationMs, flag, int, list, str } from './args.js'
import type { ParsedArgs } from './args.js'
import { compileFormat } from './format.js'
import type { PrintOptions } from './format.js'

/** Where the payload comes from. */
export type PayloadSource =
  | { kind: 'message'; data: Buffer }
  | { kind: 'stdin' }
  | { kind: 'lines' }

/** Everything `mqttc` needs to run. */
export interface MqttcConfig {
  url: string
  client: ClientOptions
  /** Needs a password read from the terminal before connecting. */
  promptPassword: boolean
  timeoutMs: number
  publish?: {
    topic: string
    source: PayloadSource
    qos: QoS
    retain: boolean
    repeat: number
    repeatDelayMs: number
    properties: PublishProperties | undefined
  }
  subscribe?: {
    filters: SubscribeRequest[]
    subscriptionIdentifier?: number
    userProperties?: UserProperty[]
    filterOut: string[]
    unsubscribe: string[]
    count: number | undefined
    waitMs: number | undefined
    exitOnSuback: boolean
    noStale: boolean
    retainedOnly: boolean
    removeRetained: boolean
  }
  /** MQTT 5 request/response: publish with this Response Topic and print the answer(s). */
  request?: { responseTopic: string; correlationData: Buffer }
  print: PrintOptions
  /** `--session DIR`: a FileStore-backed Service (durable QoS 1/2 across crashes). */
  session: string | undefined
  reconnect: boolean
  quiet: boolean
  verbose: boolean
  debug: boolean
}

const VERSIONS: Record<string, ProtocolLevel> = {
  '31': 3, mqttv31: 3, '3.1': 3, '3': 3,
  '311': 4, mqttv311: 4, '3.1.1': 4, '4': 4,
  '5': 5, mqttv5: 5, '5.0': 5
}

/** Build the configuration; throws `UsageError`. `env` gives MQTTC_PORT (the default port). */
export function buildConfig(args: ParsedArgs, env: NodeJS.ProcessEnv): MqttcConfig {
  const positionals = [...args.positionals]
  let forced: 'pub' | 'sub' | undefined
  if (positionals[0] === 'pub' || positionals[0] === 'sub') forced = positionals.shift() as 'pub' | 'sub'
  if (positionals.length > 1) throw new UsageError(`one address expected, got: ${positionals.join(' ')}`)
  const address = positionals[0]

  const protocolFlag = str(args, 'protocol')
  let level: ProtocolLevel | undefined = protocolFlag === undefined ? undefined : VERSIONS[protocolFlag.toLowerCase()]
  if (protocolFlag !== undefined && level === undefined) throw new UsageError(`-V: unknown protocol version "${protocolFlag}" (31, 311, 5)`)
  const d = properties(args.properties)
  if (args.properties.length > 0 || str(args, 'responseTopic') !== undefined || list(args, 'userProperty').length > 0 || str(args, 'contentType') !== undefined || str(args, 'messageExpiry') !== undefined || str(args, 'correlationData') !== undefined) {
    if (level !== undefined && level !== 5) throw new UsageError('MQTT 5 properties need -V 5')
    level = 5
  }
  level ??= 4

  const timeoutMs = durationMs(str(args, 'timeout') ?? '4s', '-timeout')
  const { url, tls } = target(args, address, env)
  const client: ClientOptions = { url, protocolVersion: level, connectTimeoutMs: timeoutMs }
  if (tls !== undefined) client.tls = tls

  const id = str(args, 'id')
  const prefix = str(args, 'idPrefix')
  if (id !== undefined && prefix !== undefined) throw new UsageError('-i and -I exclude each other')
  client.clientId = id ?? (prefix !== undefined ? `${prefix}${process.pid}` : `mqttc-${process.pid}-${randomBytes(4).toString('hex')}`)
  const keepalive = int(args, 'keepalive', 0, 65535, '-k')
  if (keepalive !== undefined) client.keepalive = keepalive
  const persistent = flag(args, 'persistent')
  client.clean = !persistent
  const connectProps: ConnectProperties = { ...d.connect }
  const expiry = str(args, 'sessionExpiry')
  if (expiry !== undefined) {
    if (level !== 5) throw new UsageError('-x needs -V 5')
    connectProps.sessionExpiryInterval = expiry === '-1' || expiry === '∞' ? 0xffffffff : Number(expiry)
    if (!Number.isInteger(connectProps.sessionExpiryInterval) || connectProps.sessionExpiryInterval < 0 || connectProps.sessionExpiryInterval > 0xffffffff) throw new UsageError(`-x: "${expiry}" is not a number of seconds, -1 or ∞`)
  }
  if (Object.keys(connectProps).length > 0) client.properties = connectProps

  const user = str(args, 'user')
  if (user !== undefined) client.username = user
  const password = str(args, 'password')
  const passFile = str(args, 'passFile')
  if (password !== undefined && passFile !== undefined) throw new UsageError('-P and -pass exclude each other')
  if (passFile !== undefined) client.password = readPassword(passFile)
  else if (password !== undefined) client.password = password
  const promptPassword = flag(args, 'passPrompt')

  const willTopic = str(args, 'willTopic')
  if (willTopic !== undefined) {
    const will: WillOptions = { topic: willTopic, payload: str(args, 'willPayload') ?? '', qos: qos(args, 'willQos', '--will-qos'), retain: flag(args, 'willRetain') }
    if (Object.keys(d.will).length > 0) will.properties = d.will
    client.will = will
  } else if (str(args, 'willPayload') !== undefined || str(args, 'willQos') !== undefined || flag(args, 'willRetain')) {
    throw new UsageError('--will-payload, --will-qos and --will-retain need --will-topic')
  }
  const maxInflight = int(args, 'maxInflight', 1, 65535, '-M')
  if (maxInflight !== undefined) client.maxInflight = maxInflight

  // What to do: publish and/or subscribe.
  const topics = list(args, 'topic')
  const sources = ['message', 'file', 'stdinWhole', 'stdinLines', 'nullMessage'].filter((k) => args.values.has(k))
  if (sources.length > 1) throw new UsageError('give only one of -m, -f, -s, -l, -n')
  const publishFlag = str(args, 'publish')
  const publishing = forced === 'pub' || sources.length > 0 || publishFlag !== undefined
  let pubTopic = publishFlag
  let filters = list(args, 'subscribe')
  if (publishing && publishFlag === undefined) {
    if (topics.length !== 1) throw new UsageError('publish: give one topic with -t')
    pubTopic = topics[0]
  } else if (!publishing || forced === 'sub') filters = [...filters, ...topics]
  else if (topics.length > 0) throw new UsageError('-t with -publish: use -subscribe for filters')
  if (forced === 'sub' && filters.length === 0) throw new UsageError('sub: give a filter with -t')
  const q = qos(args, 'qos', '-q')
  const config: MqttcConfig = {
    url,
    client,
    promptPassword,
    timeoutMs,
    print: printOptions(args),
    session: str(args, 'session'),
    reconnect: flag(args, 'reconnect'),
    quiet: flag(args, 'quiet'),
    verbose: flag(args, 'verbose'),
    debug: flag(args, 'debug')
  }
  if (publishing) {
    const publishProps: PublishProperties = { ...d.publish }
    const responseTopic = str(args, 'responseTopic')
    if (responseTopic !== undefined) publishProps.responseTopic = responseTopic
    const correlation = str(args, 'correlationData')
    if (correlation !== undefined) publishProps.correlationData = Buffer.from(correlation)
    const contentType = str(args, 'contentType')
    if (contentType !== undefined) publishProps.contentType = contentType
    const messageExpiry = int(args, 'messageExpiry', 0, 0xffffffff, '--message-expiry')
    if (messageExpiry !== undefined) publishProps.messageExpiryInterval = messageExpiry
    const users = list(args, 'userProperty').map((pair): UserProperty => {
      const at = pair.indexOf('=')
      if (at <= 0) throw new UsageError(`--user-property: "${pair}" is not name=value`)
      return [pair.slice(0, at), pair.slice(at + 1)]
    })
    if (users.length > 0) publishProps.userProperties = [...(publishProps.userProperties ?? []), ...users]
    config.publish = {
      topic: pubTopic!,
      source: payloadSource(args, publishFlag !== undefined),
      qos: q,
      retain: flag(args, 'retain'),
      repeat: int(args, 'repeat', 1, Number.MAX_SAFE_INTEGER, '--repeat') ?? 1,
      repeatDelayMs: durationMs(str(args, 'repeatDelay') ?? '0', '--repeat-delay'),
      properties: Object.keys(publishProps).length > 0 ? publishProps : undefined
    }
    if (publishProps.responseTopic !== undefined) {
      config.request = { responseTopic: publishProps.responseTopic, correlationData: publishProps.correlationData ?? randomBytes(16) }
      publishProps.correlationData = config.request.correlationData
    }
    if (config.session !== undefined && config.publish.source.kind !== 'lines') throw new UsageError('--session is for -l (line mode)')
  }
  if (config.session !== undefined) {
    if (id === undefined) throw new UsageError('--session needs a client id (-i)')
    if (!persistent) throw new UsageError('--session needs a persistent session (-c)')
  }
  if (filters.length > 0 || config.request !== undefined) {
    config.subscribe = {
      filters: filters.map((topicFilter) => ({ topicFilter, qos: q, retainAsPublished: flag(args, 'retainAsPublished') || undefined })),
      filterOut: list(args, 'filterOut'),
      unsubscribe: list(args, 'unsubscribe'),
      count: int(args, 'count', 1, Number.MAX_SAFE_INTEGER, '-C'),
      waitMs: str(args, 'wait') === undefined ? undefined : durationMs(str(args, 'wait')!, '-W'),
      exitOnSuback: flag(args, 'exitOnSuback'),
      noStale: flag(args, 'noStale'),
      retainedOnly: flag(args, 'retainedOnly'),
      removeRetained: flag(args, 'removeRetained')
    }
    if (d.subscribe.subscriptionIdentifiers?.[0] !== undefined) config.subscribe.subscriptionIdentifier = d.subscribe.subscriptionIdentifiers[0]
    if (d.subscribe.userProperties !== undefined) config.subscribe.userProperties = d.subscribe.userProperties
  } else if (['count', 'wait', 'exitOnSuback', 'filterOut', 'retainedOnly'].some((k) => args.values.has(k))) {
    throw new UsageError('-C, -W, -E, -T and --retained-only need a subscription (-t filter)')
  }
  return config
}

function qos(args: ParsedArgs, key: string, label: string): QoS {
  return (int(args, key, 0, 2, label) ?? 0) as QoS
}

function readPassword(file: string): Buffer {
  try {
    const data = readFileSync(file)
    // One trailing newline is what `echo secret > file` leaves: not part of the password.
    return data.at(-1) === 0x0a ? data.subarray(0, data.at(-2) === 0x0d ? -2 : -1) : data
  } catch (error) {
    throw new UsageError(`-pass: ${(error as Error).message}`)
  }
}

function payloadSource(args: ParsedArgs, publishFlag: boolean): PayloadSource {
  const message = str(args, 'message')
  if (message !== undefined) return { kind: 'message', data: Buffer.from(message) }
  const file = str(args, 'file')
  if (file !== undefined) {
    try {
      return { kind: 'message', data: readFileSync(file) }
    } catch (error) {
      throw new UsageError(`-f: ${(error as Error).message}`)
    }
  }
  if (flag(args, 'nullMessage')) return { kind: 'message', data: Buffer.alloc(0) }
  if (flag(args, 'stdinLines')) return { kind: 'lines' }
  if (flag(args, 'stdinWhole') || publishFlag) return { kind: 'stdin' }
  throw new UsageError('publish: give a payload with -m, -f, -s, -l or -n')
}

function printOptions(args: ParsedArgs): PrintOptions {
  const options: PrintOptions = { verbose: flag(args, 'printTopic'), noEol: flag(args, 'noEol'), json: flag(args, 'json') }
  const format = str(args, 'format')
  if (format !== undefined) options.format = compileFormat(format)
  if (flag(args, 'mqttcTopic') || flag(args, 'quote') || args.values.has('prefix') || args.values.has('suffix')) {
    options.mqttc = { topic: flag(args, 'mqttcTopic'), prefix: str(args, 'prefix') ?? '', suffix: str(args, 'suffix') ?? '\n', quote: flag(args, 'quote') }
  }
  return options
}

/** The broker URL and TLS options from -L / address / -h -p / --unix / -net / -tls and friends. */
function target(args: ParsedArgs, address: string | undefined, env: NodeJS.ProcessEnv): { url: string; tls: ConnectionOptions | undefined } {
  const cafile = str(args, 'cafile')
  const capath = str(args, 'capath')
  const ca = str(args, 'ca')
  const cert = str(args, 'cert')
  const key = str(args, 'key')
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('-cert and -key go together')
  const wantTls = flag(args, 'tls') || ca !== undefined || cafile !== undefined || capath !== undefined || cert !== undefined || flag(args, 'osCerts')
  const defaultPort = (secure: boolean): number => {
    const fromEnv = env.MQTTC_PORT
    if (fromEnv !== undefined && fromEnv !== '') {
      if (!/^\d+$/.test(fromEnv)) throw new UsageError(`MQTTC_PORT: "${fromEnv}" is not a port`)
      return Number(fromEnv)
    }
    return secure ? 8883 : 1883
  }
  let url: string
  const unix = str(args, 'unix') ?? (str(args, 'net') === 'unix' ? address : undefined)
  const net = str(args, 'net')
  if (net !== undefined && !['tcp', 'tcp4', 'tcp6', 'unix'].includes(net)) throw new UsageError(`-net: "${net}" is not tcp, tcp4, tcp6 or unix`)
  const givenUrl = str(args, 'url') ?? (address?.includes('://') === true ? address : undefined)
  if (unix !== undefined) url = `mqtt+unix://${encodeURI(unix)}`
  else if (givenUrl !== undefined) {
    let parsed: URL
    try {
      parsed = new URL(givenUrl)
    } catch {
      throw new UsageError(`not a URL: ${givenUrl}`)
    }
    if (wantTls && parsed.protocol === 'mqtt:') parsed.protocol = 'mqtts:'
    if (parsed.username !== '' && !args.values.has('user')) args.values.set('user', decodeURIComponent(parsed.username))
    if (parsed.password !== '' && !args.values.has('password')) args.values.set('password', decodeURIComponent(parsed.password))
    if (parsed.pathname.length > 1 && (parsed.protocol === 'mqtt:' || parsed.protocol === 'mqtts:') && list(args, 'topic').length === 0) {
      // mosquitto's -L mqtt://host/topic.
      args.values.set('topic', [decodeURIComponent(parsed.pathname.slice(1))])
    }
    parsed.username = ''
    parsed.password = ''
    if (parsed.pathname.length > 1 && (parsed.protocol === 'mqtt:' || parsed.protocol === 'mqtts:')) parsed.pathname = ''
    url = parsed.toString()
  } else {
    let host = str(args, 'host') ?? 'localhost'
    let port = int(args, 'port', 1, 65535, '-p')
    if (address !== undefined) {
      const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(address)
      if (match === null) throw new UsageError(`not an address: ${address} (host, host:port, :port or a URL)`)
      if (match[1] !== '') host = match[1]!
      if (match[2] !== undefined) port = Number(match[2])
    }
    if (net === 'tcp4' && host === 'localhost') host = '127.0.0.1'
    if (net === 'tcp6' && host === 'localhost') host = '[::1]'
    if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`
    url = `${wantTls ? 'mqtts' : 'mqtt'}://${host}:${port ?? defaultPort(wantTls)}`
  }
  const secure = /^(mqtts|wss|ssl|tls):/.test(url)
  if (!secure) return { url, tls: undefined }
  const tls: ConnectionOptions = {}
  try {
    if (cafile !== undefined || capath !== undefined) {
      const cas: string[] = []
      if (cafile !== undefined) cas.push(readFileSync(cafile, 'utf8'))
      if (capath !== undefined) for (const name of readdirSync(capath)) if (/\.(pem|crt)$/.test(name)) cas.push(readFileSync(join(capath, name), 'utf8'))
      tls.ca = cas
    }
    // mqttc's -ca amends the system roots (mosquitto's --cafile replaces them).
    if (ca !== undefined) tls.ca = [...(Array.isArray(tls.ca) ? (tls.ca as string[]) : rootCertificates), readFileSync(ca, 'utf8')]
    if (cert !== undefined) tls.cert = readFileSync(cert)
    if (key !== undefined) tls.key = readFileSync(key)
  } catch (error) {
    throw new UsageError(`TLS: ${(error as Error).message}`)
  }
  const server = str(args, 'server')
  if (server !== undefined) tls.servername = server
  if (flag(args, 'insecure')) tls.checkServerIdentity = () => undefined
  const version = str(args, 'tlsVersion')
  if (version !== undefined) {
    const v = ({ 'tlsv1.3': 'TLSv1.3', 'tlsv1.2': 'TLSv1.2', 'tlsv1.1': 'TLSv1.1' } as const)[version.toLowerCase() as 'tlsv1.3']
    if (v === undefined) throw new UsageError(`--tls-version: "${version}" (tlsv1.3, tlsv1.2, tlsv1.1)`)
    tls.minVersion = v
    tls.maxVersion = v
  }
  const ciphers = str(args, 'ciphers')
  if (ciphers !== undefined) tls.ciphers = ciphers
  const alpn = str(args, 'alpn')
  if (alpn !== undefined) tls.ALPNProtocols = [alpn]
  return { url, tls }
}

/** `-D command identifier [name] value`: mosquitto's MQTT 5 properties, by packet. */
function properties(list: string[][]): { connect: ConnectProperties; publish: PublishProperties; will: WillProperties; subscribe: { subscriptionIdentifiers?: number[]; userProperties?: UserProperty[] } } {
  const out = { connect: {} as Record<string, unknown>, publish: {} as Record<string, unknown>, will: {} as Record<string, unknown>, subscribe: {} as Record<string, unknown> }
  const NUMBERS = new Set(['session-expiry-interval', 'receive-maximum', 'maximum-packet-size', 'topic-alias-maximum', 'request-response-information', 'request-problem-information', 'payload-format-indicator', 'message-expiry-interval', 'subscription-identifier', 'will-delay-interval', 'topic-alias'])
  const ALLOWED: Record<string, string[]> = {
    connect: ['session-expiry-interval', 'receive-maximum', 'maximum-packet-size', 'topic-alias-maximum', 'request-response-information', 'request-problem-information', 'user-property'],
    publish: ['payload-format-indicator', 'message-expiry-interval', 'content-type', 'response-topic', 'correlation-data', 'user-property'],
    will: ['will-delay-interval', 'payload-format-indicator', 'message-expiry-interval', 'content-type', 'response-topic', 'correlation-data', 'user-property'],
    subscribe: ['subscription-identifier', 'user-property']
  }
  for (const [command, identifier, a, b] of list) {
    const bucket = (out as Record<string, Record<string, unknown> | undefined>)[command!]
    if (bucket === undefined || !ALLOWED[command!]!.includes(identifier!)) throw new UsageError(`-D ${command} ${identifier}: not supported (see mqttc --help)`)
    const camel = identifier!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
    if (identifier === 'user-property') {
      const users = (bucket.userProperties as UserProperty[] | undefined) ?? []
      users.push([a!, b!])
      bucket.userProperties = users
    } else if (identifier === 'subscription-identifier') {
      bucket.subscriptionIdentifiers = [Number(a)]
    } else if (NUMBERS.has(identifier!)) {
      if (!/^\d+$/.test(a!)) throw new UsageError(`-D ${command} ${identifier}: "${a}" is not a number`)
      bucket[camel] = identifier!.startsWith('request-') || identifier === 'payload-format-indicator' ? Number(a) === 1 : Number(a)
    } else if (identifier === 'correlation-data') bucket.correlationData = Buffer.from(a!)
    else bucket[camel] = a
  }
  return out as ReturnType<typeof properties>
}
