/**
 * `mqttc`, the command-line client (docs/cli.md): publish, subscribe, both, MQTT 5 request/response,
 * or a health check, with pascaldekloe mqttc's exit statuses. `runMqttc` returns the exit status;
 * bin/mqttc.ts exits with it. Nothing keeps running once the outcome is known.
 */
import type { Subscription } from 'rxjs'
import { Client, FileStore, Service } from '../client/index.js'
import type { ClientOptions, InboundMessage, PublishOptions, PublishResult, SubscribeOptions, SubscribeRequest, SubscribeResult, UnsubscribeResult } from '../client/index.js'
import type { Observable } from 'rxjs'
import { topicMatches } from '../packet/index.js'
import { UsageError, parseArgs } from './args.js'
import { EXIT, exitCodeOf } from './exit-codes.js'
import { FormatError, printMessage } from './format.js'
import { CountingStore, processIo, promptPassword, readAll, readLines } from './io.js'
import type { CommandIo } from './io.js'
import { buildConfig } from './mqttc-config.js'
import type { MqttcConfig } from './mqttc-config.js'
import { MQTTC_FLAGS } from './mqttc-flags.js'
import { mqttcHelp } from './mqttc-help.js'
import { traceLine } from './trace.js'

/** What mqttc needs of a Client or a Service. */
interface Connection {
  readonly messages$: Observable<InboundMessage>
  publish(topic: string, payload: Buffer, options?: PublishOptions): Promise<PublishResult>
  subscribe(subscriptions: SubscribeRequest[], options?: SubscribeOptions): Promise<SubscribeResult>
  unsubscribe(filters: string[]): Promise<UnsubscribeResult>
}

const STDIN_MAX = 256 * 1024 * 1024

/** Run mqttc with `argv` (without node and script); resolves with the exit status. */
export async function runMqttc(argv: readonly string[], io: CommandIo = processIo()): Promise<number> {
  const quiet = argv.includes('-quiet') || argv.includes('--quiet')
  let config: MqttcConfig
  try {
    const args = parseArgs(argv, MQTTC_FLAGS)
    if (args.values.has('help')) {
      io.stdout.write(mqttcHelp())
      return EXIT.ok
    }
    if (args.values.has('version')) {
      io.stdout.write('mqttc 0.1.0\n')
      return EXIT.ok
    }
    config = buildConfig(args, io.env)
  } catch (error) {
    if (!quiet) io.stderr.write(`mqttc: ${(error as Error).message}\nmqttc: see mqttc --help\n`)
    return error instanceof UsageError ? EXIT.usage : EXIT.operational
  }
  return new Run(config, io).main()
}

/** One run of the command. */
class Run {
  private code: number | undefined
  private resolveDone!: (code: number) => void
  private readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve))
  private client: Client | undefined
  private service: Service | undefined
  private readonly connectAbort = new AbortController()
  private readonly cleanups: (() => void)[] = []
  private printed = 0

  constructor(private readonly config: MqttcConfig, private readonly io: CommandIo) {}

  private log(text: string): void {
    if (!this.config.quiet) this.io.stderr.write(`mqttc: ${text}\n`)
  }

  private progress(text: string): void {
    if (this.config.verbose && !this.config.quiet) this.io.stderr.write(`mqttc: ${text}\n`)
  }

  async main(): Promise<number> {
    let interrupts = 0
    this.cleanups.push(this.io.onSignal('SIGINT', () => {
      if (++interrupts > 1) this.resolveDone(EXIT.sigint)
      this.finish(EXIT.sigint)
    }))
    this.cleanups.push(this.io.onSignal('SIGTERM', () => this.finish(EXIT.sigterm)))
    const onStdoutError = (error: NodeJS.ErrnoException): void => {
      this.finish(error.code === 'EPIPE' ? EXIT.brokenPipe : EXIT.operational, error.code === 'EPIPE' ? undefined : `standard output: ${error.message}`)
    }
    this.io.stdout.on('error', onStdoutError)
    this.cleanups.push(() => this.io.stdout.off('error', onStdoutError))
    this.work().catch((error: unknown) => this.fail(error))
    const code = await this.done
    for (const cleanup of this.cleanups) cleanup()
    return code
  }

  private fail(error: unknown): void {
    const code = exitCodeOf(error)
    let text = error instanceof Error ? error.message : String(error)
    const reason = (error as { reasonString?: string }).reasonString
    if (reason !== undefined) text += ` (${reason})`
    this.finish(code, text)
  }

  /** Decide the outcome (the first decision wins), close the connection accordingly, resolve `done`. */
  private finish(code: number, message?: string): void {
    if (this.code !== undefined) return
    this.code = code
    if (message !== undefined) this.log(message)
    this.connectAbort.abort(new Error('finished'))
    void this.close(code).then(() => this.resolveDone(code), () => this.resolveDone(code))
  }

  private async close(code: number): Promise<void> {
    const drainMs = this.config.timeoutMs
    const client = this.client
    const service = this.service
    if (code === EXIT.sigint) {
      // No normal DISCONNECT, so the broker publishes the will (MQTT 5: 0x04 says so explicitly).
      const current = service?.current ?? client
      if (current?.connected === true && current.protocolLevel === 5) await current.end({ reasonCode: 0x04 })
      else current?.destroy()
      await service?.stop()
      return
    }
    if (service !== undefined) await service.stop({ drainMs })
    else if (client !== undefined) await client.end({ drainMs: code === EXIT.ok || code === EXIT.sigterm || code === EXIT.waitExpired ? drainMs : 0 })
  }

  private async connect(): Promise<Connection> {
    const config = this.config
    const options: ClientOptions = { ...config.client, signal: this.connectAbort.signal }
    if (config.debug) {
      const id = config.client.clientId ?? ''
      options.onPacket = (trace) => void this.io.stderr.write(`${traceLine(id, trace)}\n`)
    }
    if (config.promptPassword) options.password = await promptPassword()
    if (config.session === undefined) {
      this.progress(`connecting to ${config.url}`)
      const client = await Client.connect(options)
      this.client = client
      void client.closed.then((info) => {
        if (info.error !== undefined) this.fail(info.error)
      })
      this.progress(`connected (session present: ${client.connack.sessionPresent})`)
      return client
    }
    const store = new CountingStore(new FileStore(config.session, { sync: 'write' }), (n) => this.progress(`journaled ${n}`))
    const { signal: _signal, ...rest } = options
    const service = new Service({ ...rest, store, reconnect: { onRefused: 'transient-only' } })
    this.service = service
    const states = service.state$.subscribe((state) => {
      if (state.type === 'online') this.progress(`connected (session present: ${state.sessionPresent})`)
      else if (state.type === 'offline' && state.error !== undefined) this.progress(`offline: ${state.error.message}; retrying in ${state.retryInMs} ms`)
      else if (state.type === 'stopped' && state.error !== undefined) this.fail(state.error)
    })
    this.cleanups.push(() => states.unsubscribe())
    await service.start()
    await service.online({ signal: this.connectAbort.signal })
    return service
  }

  private async work(): Promise<void> {
    const config = this.config
    const connection = await this.connect()
    if (this.code !== undefined) return
    const sub = config.subscribe
    if (sub !== undefined) await this.subscribe(connection, sub)
    if (this.code !== undefined) return
    const pub = config.publish
    if (pub !== undefined) {
      await this.publish(connection, pub)
      if (this.code !== undefined) return
      if (config.request !== undefined) {
        this.armWait(sub?.waitMs ?? config.timeoutMs, sub?.waitMs !== undefined ? EXIT.waitExpired : EXIT.operational, 'no response within -timeout')
        return
      }
      if (sub === undefined) this.finish(EXIT.ok)
      return
    }
    if (sub === undefined) {
      // Health check: CONNACK accepted and the broker answers a PINGREQ; disconnect cleanly.
      await this.healthCheck()
      if (this.code !== undefined) return
      this.finish(EXIT.ok)
    }
  }

  /** PINGREQ … PINGRESP within -timeout (exit 1 otherwise). */
  private async healthCheck(): Promise<void> {
    const client = this.client ?? this.service?.current
    if (client === undefined) return
    const timeout = AbortSignal.timeout(this.config.timeoutMs)
    try {
      const ms = await client.ping({ signal: AbortSignal.any([timeout, this.connectAbort.signal]) })
      this.progress(`health check ok (PINGRESP after ${ms} ms)`)
    } catch (error) {
      if (this.code !== undefined) return
      if (timeout.aborted) this.finish(EXIT.operational, `no PINGRESP within ${this.config.timeoutMs} ms`)
      else this.fail(error)
    }
  }

  private armWait(ms: number, code: number, message?: string): void {
    const timer = setTimeout(() => this.finish(code, message), ms)
    timer.unref()
    this.cleanups.push(() => clearTimeout(timer))
  }

  private async subscribe(connection: Connection, sub: NonNullable<MqttcConfig['subscribe']>): Promise<void> {
    const config = this.config
    const request = config.request
    const subscription: Subscription = connection.messages$.subscribe((message) => {
      if (this.code !== undefined) return
      if (request !== undefined) {
        if (message.topic !== request.responseTopic || message.properties?.correlationData?.equals(request.correlationData) !== true) return
      } else {
        if (sub.filterOut.some((filter) => topicMatches(filter, message.topic))) return
        if (sub.retainedOnly && !message.retain) {
          this.finish(EXIT.ok)
          return
        }
        if (sub.noStale && message.retain) return
        if (sub.removeRetained && message.retain && message.payload.length > 0) {
          connection.publish(message.topic, Buffer.alloc(0), { retain: true, qos: 0 }).catch((error: unknown) => this.fail(error))
        }
      }
      let bytes: Buffer
      try {
        bytes = printMessage(config.print, message)
      } catch (error) {
        if (error instanceof FormatError) {
          this.log(error.message)
          return
        }
        throw error
      }
      this.io.stdout.write(bytes)
      this.printed++
      const count = sub.count ?? (request !== undefined ? 1 : undefined)
      if (count !== undefined && this.printed >= count) {
        subscription.unsubscribe()
        this.finish(EXIT.ok)
      }
    })
    this.cleanups.push(() => subscription.unsubscribe())
    if (sub.waitMs !== undefined) this.armWait(sub.waitMs, EXIT.waitExpired, 'timed out')
    if (sub.unsubscribe.length > 0) await this.bounded(connection.unsubscribe(sub.unsubscribe), 'UNSUBACK')
    const filters = sub.filters.length > 0 ? sub.filters : [{ topicFilter: request!.responseTopic, qos: config.publish?.qos ?? 0 }]
    const options: SubscribeOptions = {}
    if (sub.subscriptionIdentifier !== undefined) options.subscriptionIdentifier = sub.subscriptionIdentifier
    if (sub.userProperties !== undefined) options.userProperties = sub.userProperties
    const result = await this.bounded(connection.subscribe(filters, options), 'SUBACK')
    this.progress(`subscribed: ${filters.map((f, i) => `${f.topicFilter} (${result.reasonCodes[i]})`).join(', ')}`)
    if (sub.exitOnSuback) this.finish(EXIT.ok)
  }

  /** An acknowledgement must come within -timeout (mqttc's per-operation limit). */
  private bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${this.config.timeoutMs} ms`)), this.config.timeoutMs)
      timer.unref()
      promise.then(resolve, reject).finally(() => clearTimeout(timer))
    })
  }

  private async publish(connection: Connection, pub: NonNullable<MqttcConfig['publish']>): Promise<void> {
    const options: PublishOptions = { qos: pub.qos, retain: pub.retain }
    if (pub.properties !== undefined) options.properties = pub.properties
    if (pub.source.kind === 'lines') return this.publishLines(connection, pub.topic, options)
    const payload = pub.source.kind === 'message' ? pub.source.data : await readAll(this.io.stdin, STDIN_MAX)
    for (let i = 0; i < pub.repeat && this.code === undefined; i++) {
      if (i > 0 && pub.repeatDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, pub.repeatDelayMs))
      await this.bounded(connection.publish(pub.topic, payload, options), pub.qos === 0 ? 'write' : 'acknowledgement')
      this.progress(`published ${payload.length} bytes to ${pub.topic}`)
    }
  }

  /** `-l`: one message per line, as they come, with at most the in-flight window outstanding. */
  private async publishLines(connection: Connection, topic: string, options: PublishOptions): Promise<void> {
    const window = Math.max(1, this.config.client.maxInflight ?? 1000)
    const pending = new Set<Promise<unknown>>()
    let sent = 0
    let failure: unknown
    for await (const line of readLines(this.io.stdin)) {
      if (this.code !== undefined) return
      const promise = connection.publish(topic, Buffer.from(line), options).then(
        () => {
          sent++
        },
        (error: unknown) => {
          failure ??= error
        }
      )
      pending.add(promise)
      void promise.finally(() => pending.delete(promise))
      if (failure !== undefined) break
      if (pending.size >= window) await Promise.race(pending)
    }
    if (failure === undefined && pending.size > 0) {
      // EOF: wait up to -timeout for what is still in flight.
      await Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, this.config.timeoutMs).unref())])
    }
    this.progress(`published ${sent} lines to ${topic}`)
    if (failure !== undefined) throw failure
    if (pending.size > 0) {
      const where = this.config.session !== undefined ? ` in ${this.config.session} (resent on next run)` : ''
      throw new Error(`${pending.size} messages pending${where}`)
    }
  }
}
