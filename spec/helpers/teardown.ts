/**
 * One teardown registry for specs: register clean-up work as resources are made, run it all (last
 * registered first) after each test, whatever failed.
 *
 * ```ts
 * const teardown = useTeardown()          // registers mocha's afterEach
 * const broker = teardown.add(new Broker(...), (b) => b.close())
 * ```
 */
export class Teardown {
  private readonly work: (() => unknown)[] = []

  /** Register `close(resource)` and return the resource. */
  add<T>(resource: T, close: (resource: T) => unknown): T {
    this.work.push(() => close(resource))
    return resource
  }

  /** Register a function. */
  defer(fn: () => unknown): void {
    this.work.push(fn)
  }

  /** Run everything registered, newest first; report the first failure after running all. */
  async run(): Promise<void> {
    let failure: unknown
    while (this.work.length > 0) {
      const fn = this.work.pop()!
      try {
        await fn()
      } catch (error) {
        failure ??= error
      }
    }
    if (failure !== undefined) throw failure
  }
}

/** A `Teardown` run by mocha after each test of the calling suite. */
export function useTeardown(): Teardown {
  const teardown = new Teardown()
  afterEach(() => teardown.run())
  return teardown
}
