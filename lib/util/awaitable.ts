/**
 * A result that may be ready now or later. Every Backend and Session method returns one, so a
 * synchronous implementation (MemoryBackend) pays no Promise per call: callers test with
 * `isPromise` and only `await` a real promise.
 */
export type Awaitable<T> = T | Promise<T>

/** True when `value` is a thenable that must be awaited. */
export function isPromise<T>(value: Awaitable<T>): value is Promise<T> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}
