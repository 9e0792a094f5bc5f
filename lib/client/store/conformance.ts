/**
 * The client store conformance suite: mocha cases that any `ClientStore` implementation runs to
 * show it keeps the contract of lib/client/store/store.ts.
 *
 * ```ts
 * // spec/my-store.spec.ts (run by mocha)
 * import { storeConformance } from 'mqtt-broker-framework/client/store/conformance'
 * storeConformance('SqliteStore', () => {
 *   const file = freshTempFile()
 *   return { store: () => new SqliteStore(file), destroy: () => rm(file) }
 * })
 * ```
 *
 * The cases drive the store only through `open`, `commit` and `close`, the way a client session
 * does, and check what a later `open` (of a new instance from `fixture.store()`) gives back.
 * See docs/client-store.md.
 */
import type { Awaitable } from '../../util/awaitable.js'
import { messageCases, metaCases, subscriptionCases } from './conformance-cases.js'
import { mochaGlobals, StoreHarness } from './conformance-harness.js'
import type { StoreFeatures, StoreFixture } from './conformance-harness.js'

export { StoreHarness, commit, packet, rejectsStore, META } from './conformance-harness.js'
export type { StoreFeatures, StoreFixture, MochaGlobals } from './conformance-harness.js'

/**
 * Declares the conformance cases for a store as one mocha `describe` block named
 * `${name} store conformance`. Call it at the top level of a mocha spec file (it uses mocha's
 * globals and throws when they are missing).
 *
 * @param name shown in the test report.
 * @param factory makes fresh, empty storage for each case; the suite closes every store it
 *   opened and then calls `destroy`.
 */
export function storeConformance(
  name: string,
  factory: () => Awaitable<StoreFixture>,
  features: StoreFeatures = {}
): void {
  const mocha = mochaGlobals('storeConformance')
  const h = new StoreHarness(factory, features)
  mocha.describe(`${name} store conformance`, () => {
    mocha.beforeEach(() => h.start())
    mocha.afterEach(() => h.stop())
    metaCases(h, mocha)
    messageCases(h, mocha)
    subscriptionCases(h, mocha)
  })
}
