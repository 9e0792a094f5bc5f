/**
 * The mocha globals an exported conformance suite (backends, client stores) declares its cases
 * with, looked up at call time so that importing a suite never requires mocha.
 */
export interface MochaGlobals {
  describe(title: string, fn: () => void): void
  it(title: string, fn: () => Promise<void>): void
  beforeEach(fn: () => Promise<void>): void
  afterEach(fn: () => Promise<void>): void
}

/** The mocha globals, or an error saying that `suite()` must be called from a mocha spec file. */
export function mochaGlobals(suite: string): MochaGlobals {
  const g = globalThis as unknown as Partial<MochaGlobals>
  if (
    typeof g.describe !== 'function' ||
    typeof g.it !== 'function' ||
    typeof g.beforeEach !== 'function' ||
    typeof g.afterEach !== 'function'
  ) {
    throw new Error(`${suite}() declares mocha suites: call it from a mocha spec file`)
  }
  return g as MochaGlobals
}
