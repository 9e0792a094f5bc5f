import type { Backend, ClientHandle, DeliveryResult, Message, ProtocolLevel, StoredSubscription } from '../../lib/index.js'

/** A handle that only forwards to the engine's (as `GuardedHandle` does, without any check). */
class ForwardingHandle implements ClientHandle {
  constructor (readonly inner: ClientHandle) {}
  get clientId (): string { return this.inner.clientId }
  get protocolLevel (): ProtocolLevel { return this.inner.protocolLevel }
  get username (): string | undefined { return this.inner.username }
  get tenant (): string | undefined { return this.inner.tenant }
  get connected (): boolean { return this.inner.connected }
  deliver (message: Message, subscription: StoredSubscription, isRetained?: boolean): DeliveryResult {
    return this.inner.deliver(message, subscription, isRetained)
  }

  close (reasonCode?: number, reasonString?: string): void { this.inner.close(reasonCode, reasonString) }
}

/**
 * A decorator that decides nothing (for engine-cost.ts): every call goes to `inner`, through one
 * handle per connection when `wrap` (what the access-control decorator's shape costs by itself).
 */
export function passThrough (inner: Backend, wrap: boolean): Backend {
  const handles = new WeakMap<ClientHandle, ClientHandle>()
  const g = (c: ClientHandle): ClientHandle => {
    if (!wrap) return c
    let h = handles.get(c)
    if (h === undefined) handles.set(c, h = new ForwardingHandle(c))
    return h
  }
  return {
    authenticate: (c, credentials) => inner.authenticate(g(c), credentials),
    setup: (c, clean, expiry) => inner.setup(g(c), clean, expiry),
    queueOffline: (c) => inner.queueOffline(g(c)),
    subscribe: (c, subscriptions) => inner.subscribe(g(c), subscriptions),
    unsubscribe: (c, filters) => inner.unsubscribe(g(c), filters),
    storeRetained: (c, message) => inner.storeRetained(c === undefined ? undefined : g(c), message),
    queueRetained: (c, subscription) => inner.queueRetained(g(c), subscription),
    publish: (c, message) => inner.publish(c === undefined ? undefined : g(c), message),
    terminate: (c) => inner.terminate(g(c)),
    close: () => inner.close()
  }
}
