/**
 * A backend whose every Backend and Session method answers with a promise (resolved on a later
 * tick), wrapping a MemoryBackend: it drives the engine's asynchronous paths, which a synchronous
 * backend never takes.
 */
import type {
  AuthenticationResult,
  Backend,
  ClientHandle,
  Credentials,
  SetupResult,
  SubscribeResult
} from '../../lib/backend/backend.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { MemoryBackendOptions } from '../../lib/backend/memory-backend.js'
import type {
  Message,
  OutgoingRecord,
  QueuedMessage,
  Session,
  StoredSubscription,
  StoredWill
} from '../../lib/session/session.js'

const later = <T>(value: T): Promise<T> => new Promise((resolve) => setImmediate(() => resolve(value)))

/** A Session that answers every call with a promise. */
export class AsyncSession implements Session {
  constructor(readonly inner: Session) {}
  get clientId(): string {
    return this.inner.clientId
  }
  get expiryInterval(): number {
    return this.inner.expiryInterval
  }
  set expiryInterval(value: number) {
    this.inner.expiryInterval = value
  }
  nextPacketId(): number {
    return this.inner.nextPacketId()
  }
  async saveOutgoing(record: OutgoingRecord): Promise<void> {
    await later(this.inner.saveOutgoing(record))
  }
  async getOutgoing(packetId: number): Promise<OutgoingRecord | undefined> {
    return later(await this.inner.getOutgoing(packetId))
  }
  async deleteOutgoing(packetId: number): Promise<void> {
    await later(this.inner.deleteOutgoing(packetId))
  }
  async listOutgoing(): Promise<OutgoingRecord[]> {
    return later(await this.inner.listOutgoing())
  }
  async saveIncoming(packetId: number): Promise<void> {
    await later(this.inner.saveIncoming(packetId))
  }
  async hasIncoming(packetId: number): Promise<boolean> {
    return later(await this.inner.hasIncoming(packetId))
  }
  async deleteIncoming(packetId: number): Promise<void> {
    await later(this.inner.deleteIncoming(packetId))
  }
  async listSubscriptions(): Promise<StoredSubscription[]> {
    return later(await this.inner.listSubscriptions())
  }
  async saveWill(will: StoredWill): Promise<void> {
    await later(this.inner.saveWill(will))
  }
  async clearWill(): Promise<void> {
    await later(this.inner.clearWill())
  }
  async enqueue(item: QueuedMessage): Promise<boolean> {
    return later(await this.inner.enqueue(item))
  }
}

/** A MemoryBackend behind promises. */
export class AsyncBackend implements Backend {
  readonly memory: MemoryBackend
  constructor(options?: MemoryBackendOptions) {
    this.memory = new MemoryBackend(options)
  }
  async authenticate(client: ClientHandle, credentials: Credentials): Promise<AuthenticationResult> {
    return later(await this.memory.authenticate(client, credentials))
  }
  authenticationMethods(client: ClientHandle): readonly string[] {
    return this.memory.authenticationMethods(client)
  }
  async setup(client: ClientHandle, clean: boolean, expiryInterval: number): Promise<SetupResult> {
    const result = await this.memory.setup(client, clean, expiryInterval)
    return later({ session: new AsyncSession(result.session), present: result.present })
  }
  async queueOffline(client: ClientHandle): Promise<void> {
    await later(undefined)
    await this.memory.queueOffline(client)
  }
  async subscribe(client: ClientHandle, subscriptions: StoredSubscription[]): Promise<SubscribeResult[]> {
    return later(await this.memory.subscribe(client, subscriptions))
  }
  async unsubscribe(client: ClientHandle, topicFilters: string[]): Promise<number[]> {
    return later(await this.memory.unsubscribe(client, topicFilters))
  }
  async storeRetained(client: ClientHandle | undefined, message: Message): Promise<void> {
    await later(this.memory.storeRetained(client, message))
  }
  async queueRetained(client: ClientHandle, subscription: StoredSubscription): Promise<void> {
    await later(undefined)
    await this.memory.queueRetained(client, subscription)
  }
  async publish(client: ClientHandle | undefined, message: Message): Promise<number | undefined> {
    return later(await this.memory.publish(client, message))
  }
  async terminate(client: ClientHandle): Promise<void> {
    await later(this.memory.terminate(client))
  }
  async close(): Promise<void> {
    await this.memory.close()
  }
}
