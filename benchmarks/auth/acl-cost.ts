/**
 * What the access-control decorator adds per delivery and per publish, without sockets: a
 * `MemoryBackend` driven directly by counting client handles, plain and behind `withAccessControl`
 * with the 20 rules of the broker benchmark's ACL row (benchmarks/broker/servers/acl-rules.ts).
 * Deterministic enough to compare changes on a loaded machine, where the socket benchmark's
 * deliveries per broker CPU-second swing by tens of per cent.
 *
 *   node --import tsx benchmarks/auth/acl-cost.ts [--rounds 7] [--messages 20000]
 *
 * Prints, per scenario, the median CPU ns per delivery (CPU time of this process, which a loaded
 * machine disturbs less than wall time) (fan-out: 1 publisher → 100 `#` subscribers;
 * fan-in: 4 publishers → 1 `#` subscriber, each message authorized for write then delivered) for
 * both, and the difference. Every message gets a topic string of its own, as a decoded PUBLISH has.
 */
import { MemoryBackend, withAccessControl } from '../../lib/index.js'
import type { Backend, ClientHandle, DeliveryResult, Message, ProtocolLevel, StoredSubscription } from '../../lib/index.js'
import { benchmarkAcl } from '../broker/servers/acl-rules.js'

class CountingClient implements ClientHandle {
  readonly protocolLevel: ProtocolLevel = 4
  readonly username: string | undefined = undefined
  readonly tenant: string | undefined = undefined
  readonly connected = true
  delivered = 0
  constructor (readonly clientId: string) {}
  deliver (_message: Message, _subscription: StoredSubscription): DeliveryResult {
    this.delivered++
    return 'sent'
  }

  close (): void {}
}

async function connect (b: Backend, clientId: string): Promise<{ client: CountingClient, session: Awaited<ReturnType<Backend['setup']>>['session'] }> {
  const client = new CountingClient(clientId)
  const connect = { type: 'connect', protocolLevel: 4, clientId, clean: true, keepalive: 0 } as const
  const verdict = await b.authenticate(client, { clientId, username: undefined, password: undefined, connect })
  if (verdict.result !== 'allow') throw new Error(`${clientId} refused`)
  const { session } = await b.setup(client, true, 0)
  await b.queueOffline(client) // the session goes live
  return { client, session }
}

/** `count` topic strings equal to `topic`, each its own flat string (as decoding a PUBLISH makes). */
function topics (topic: string, count: number): string[] {
  const bytes = Buffer.from(topic)
  return Array.from({ length: count }, () => bytes.toString('utf8'))
}

async function scenario (make: () => Backend, publishers: number, subscribers: number, messages: number): Promise<number> {
  const b = make()
  const subs = []
  for (let i = 0; i < subscribers; i++) {
    const s = await connect(b, `sub-${i}`)
    const subscription: StoredSubscription = { topicFilter: '#', qos: 0 }
    if (b.authorizeSubscribe !== undefined && await b.authorizeSubscribe(s.client, subscription) !== true) throw new Error('subscription refused')
    await b.subscribe(s.client, [subscription])
    subs.push(s.client)
  }
  const pubs = []
  for (let i = 0; i < publishers; i++) pubs.push((await connect(b, `pub-${i}`)).client)
  const names = topics('bench/b1r1/run', messages)
  const payload = Buffer.alloc(16)
  const t0 = process.cpuUsage()
  for (let i = 0; i < messages; i++) {
    const client = pubs[i % publishers]!
    const message: Message = { topic: names[i]!, payload, qos: 0, retain: false, origin: client.clientId }
    if (b.authorizePublish !== undefined && b.authorizePublish(client, message) !== true) throw new Error('publish refused')
    b.publish(client, message)
  }
  const used = process.cpuUsage(t0)
  const ms = (used.user + used.system) / 1000
  const delivered = subs.reduce((n, s) => n + s.delivered, 0)
  if (delivered !== messages * subscribers) throw new Error(`delivered ${delivered} of ${messages * subscribers}`)
  await b.close()
  return ms * 1e6 / delivered
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const args = process.argv.slice(2)
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name)
  return i < 0 ? fallback : Number(args[i + 1])
}
const rounds = flag('--rounds', 7)
const messages = flag('--messages', 20_000)
const plain = (): Backend => new MemoryBackend()
const acl = (): Backend => withAccessControl(new MemoryBackend(), { acl: benchmarkAcl(), bruteForce: false })
for (const [name, pubs, subs, count] of [['fanout (1 → 100 #)', 1, 100, messages / 10], ['fanin (4 → 1 #)', 4, 1, messages * 5]] as const) {
  const a: number[] = []
  const b: number[] = []
  for (let r = 0; r < rounds + 1; r++) {
    // Interleaved; the first round warms up and is not counted.
    const x = await scenario(plain, pubs, subs, count)
    const y = await scenario(acl, pubs, subs, count)
    if (r > 0) { a.push(x); b.push(y) }
  }
  const [pa, pb] = [median(a), median(b)]
  process.stdout.write(`${name}: plain ${pa.toFixed(1)} ns/delivery, ACL ${pb.toFixed(1)} ns/delivery, +${(pb - pa).toFixed(1)} ns (${(100 * (pb - pa) / pa).toFixed(0)} %)\n`)
}
