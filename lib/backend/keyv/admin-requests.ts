import { randomUUID } from 'node:crypto'
import { SessionTakenOverError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { StoredSubscription } from '../../session/session.js'
import { ADMIN_DELETE } from './admin-scripts.js'
import { fromJson, toJson } from './codec.js'
import { sessionId } from './keys.js'
import type { TenantKeys } from './keys.js'
import type { LocalRouting } from './local-routing.js'
import type { NodeContext } from './node-context.js'
import { BackendUnavailableError } from './redis-link.js'
import type { RedisLink } from './redis-link.js'
import { SUBSCRIBE, UNSUBSCRIBE } from './scripts.js'
import type { Subscriptions } from './subscriptions.js'

/** What an operator asks of one session. */
export type AdminOp =
  | { op: 'kick'; reasonCode: number; reasonString?: string }
  | { op: 'delete' }
  | { op: 'subscribe'; subscription: StoredSubscription }
  | { op: 'unsubscribe'; filter: string }

/**
 * The answer about one session: true/false as the operation tells; 'none' when there is no such
 * session; 'gone' when the node asked no longer serves its connection (the caller reads again).
 */
type Outcome = boolean | 'none' | 'gone'

/** How often an operation reads the session again after it changed hands meanwhile. */
const ATTEMPTS = 4

/**
 * Operators' requests on sessions (the management API), cluster-wide: each goes where the session
 * is. A session connected to this node is changed here; one connected to another live node is
 * changed by that node, asked through its inbox stream (`type admin`, answered with `admin-reply`
 * in this node's inbox, bounded by the takeover timeout; a request that arrives after the asker
 * gave up is dropped, so that a 503 leaves nothing behind); an away session (or one of a dead node)
 * is changed in Redis by a script fenced on the owner and epoch just read, so that a connection
 * that takes the session over meanwhile wins and the request is tried again. Internal to
 * `KeyvBackend`.
 */
export class AdminRequests {
  readonly #node: NodeContext
  readonly #routing: LocalRouting
  readonly #subscriptions: Subscriptions
  /** Requests sent to other nodes, by id, waiting for their reply. */
  readonly #pending = new Map<string, (reply: Outcome | Error) => void>()

  constructor(node: NodeContext, routing: LocalRouting, subscriptions: Subscriptions) {
    this.#node = node
    this.#routing = routing
    this.#subscriptions = subscriptions
  }

  /** Runs `op` on the session `clientId` of `tenant` wherever it is; 'none' when there is none. */
  async run(tenant: string | undefined, clientId: string, op: AdminOp): Promise<boolean | 'none'> {
    const node = this.#node
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      // Read again a little later: the connection asked about was ending, or another took over.
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * attempt))
      const link = await node.use()
      const keys = (await node.tenant(tenant)).keys
      const [owner, online, epoch] = await link.sendText<(string | null)[]>(['HMGET', keys.session(clientId), 'node', 'online', 'epoch'])
      if (epoch === null || epoch === undefined || online === null || online === undefined) return 'none'
      const id = sessionId(keys.tenant, clientId)
      let outcome: Outcome
      if (online === '1' && owner === node.nodeId) outcome = await this.#local(id, op)
      else if (online === '1' && owner !== null && owner !== undefined && owner !== '' && (await this.#alive(link, owner))) {
        outcome = await this.#ask(link, owner, keys.tenant, clientId, op)
      } else {
        try {
          outcome = await this.#direct(link, keys, clientId, owner ?? '', epoch, op)
        } catch (error) {
          if (!(error instanceof SessionTakenOverError)) throw error
          outcome = 'gone'
        }
      }
      if (outcome !== 'gone') return outcome
      // The connection is ending: it is not there to kick any more.
      if (op.op === 'kick') return false
    }
    throw new BackendUnavailableError(`the session of ${clientId} kept changing hands: try again`)
  }

  /** An `admin` or `admin-reply` entry of this node's inbox. */
  onEntry(fields: Map<string, Buffer>): void {
    const text = (name: string): string => fields.get(name)?.toString() ?? ''
    if (text('type') === 'admin-reply') {
      const done = this.#pending.get(text('id'))
      if (done === undefined) return
      const error = text('e')
      done(error !== '' ? new Error(error) : fromJson<Outcome>(text('r')))
      return
    }
    const from = text('n')
    const reply = (answer: { r: Outcome } | { e: string }): void => {
      const body = 'r' in answer ? ['r', toJson(answer.r)] : ['e', answer.e]
      this.#node.link
        ?.send(['XADD', this.#node.nodeKeys.inbox(from), 'MAXLEN', '~', '10000', '*', 'type', 'admin-reply', 'id', text('id'), ...body])
        .catch(() => undefined)
    }
    // The asker gave up (and answered 503) past this time: a late request is not carried out.
    const deadline = Number(text('d'))
    if (Number.isFinite(deadline) && deadline > 0 && Date.now() > deadline) return
    let op: AdminOp
    try {
      op = fromJson<AdminOp>(text('o'))
    } catch {
      reply({ e: 'malformed request' })
      return
    }
    this.#local(sessionId(text('t'), text('c')), op).then(
      (r) => reply({ r }),
      (error: unknown) => {
        if (error instanceof SessionTakenOverError) reply({ r: 'gone' })
        else reply({ e: error instanceof Error ? error.message : String(error) })
      }
    )
  }

  /** Ends every wait (at close). */
  clear(): void {
    for (const done of [...this.#pending.values()]) done(new BackendUnavailableError('the backend is closed'))
    this.#pending.clear()
  }

  /** `op` on the connection this node serves for session `id`. */
  async #local(id: string, op: AdminOp): Promise<Outcome> {
    const entry = this.#routing.get(id)
    if (entry === undefined || !entry.client.connected) return 'gone'
    switch (op.op) {
      case 'kick':
        entry.client.close(op.reasonCode, op.reasonString)
        return true
      case 'delete': {
        const node = this.#node
        const link = await node.use()
        const keys = entry.tenant.keys
        const clientId = entry.client.clientId
        // Detached first: nothing more is delivered, and the connection's end finds no session.
        this.#routing.evict(entry)
        try {
          await link.script(ADMIN_DELETE, [entry.session.key], deleteArgs(node, keys, clientId, node.nodeId, entry.session.epoch))
        } finally {
          if (entry.client.connected) entry.client.close(ReasonCode.AdministrativeAction, 'session deleted by an administrator')
        }
        return true
      }
      case 'subscribe':
        await this.#subscriptions.subscribeEntry(entry, [op.subscription])
        return true
      case 'unsubscribe': {
        const [code] = await this.#subscriptions.unsubscribeEntry(entry, [op.filter])
        return code === ReasonCode.Success
      }
    }
  }

  /** `op` on a session without a live connection, in Redis, fenced on (`owner`, `epoch`). */
  async #direct(link: RedisLink, keys: TenantKeys, clientId: string, owner: string, epoch: string, op: AdminOp): Promise<Outcome> {
    const node = this.#node
    const s = keys.session(clientId)
    switch (op.op) {
      case 'kick':
        return false
      case 'delete':
        await link.script(ADMIN_DELETE, [s], deleteArgs(node, keys, clientId, owner, epoch))
        return true
      case 'subscribe': {
        const sub = op.subscription
        await link.script(SUBSCRIBE, [s], [owner, epoch, sub.topicFilter, toJson(sub), keys.prefix, clientId, node.nodeKeys.routeLog, keys.tenant])
        return true
      }
      case 'unsubscribe': {
        const n = await link.script<number>(UNSUBSCRIBE, [s], [owner, epoch, op.filter, keys.prefix, clientId, node.nodeKeys.routeLog, keys.tenant])
        return n === 1
      }
    }
  }

  /** Asks node `owner` to run `op` on its connection; 'gone' when that node died meanwhile. */
  async #ask(link: RedisLink, owner: string, tenant: string, clientId: string, op: AdminOp): Promise<Outcome> {
    const node = this.#node
    const id = randomUUID()
    let timer: ReturnType<typeof setTimeout> | undefined
    const answered = new Promise<Outcome | Error | 'timeout'>((resolve) => {
      this.#pending.set(id, resolve)
      timer = setTimeout(() => resolve('timeout'), node.takeoverTimeout)
    })
    try {
      const deadline = String(Date.now() + node.takeoverTimeout)
      await link.send(['XADD', node.nodeKeys.inbox(owner), 'MAXLEN', '~', '10000', '*', 'type', 'admin', 'id', id, 'n', node.nodeId, 'd', deadline, 't', tenant, 'c', clientId, 'o', toJson(op)])
      const reply = await answered
      if (reply instanceof Error) throw reply
      if (reply !== 'timeout') return reply
      if (!(await this.#alive(link, owner))) return 'gone'
      throw new BackendUnavailableError(`node ${owner} did not answer within ${node.takeoverTimeout} ms`)
    } finally {
      clearTimeout(timer)
      this.#pending.delete(id)
    }
  }

  /** Whether node `id` beat recently. */
  async #alive(link: RedisLink, id: string): Promise<boolean> {
    const node = this.#node
    const seen = await link.sendText<string | null>(['ZSCORE', node.nodeKeys.nodes, id])
    return seen !== null && Number(seen) >= Date.now() - node.deadAfterMs
  }
}

function deleteArgs(node: NodeContext, keys: TenantKeys, clientId: string, owner: string, epoch: string): string[] {
  return [owner, epoch, keys.prefix, clientId, node.nodeKeys.routeLog, keys.tenant, node.nodeKeys.sessionsPrefix, sessionId(keys.tenant, clientId)]
}
