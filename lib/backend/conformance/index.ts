/**
 * The backend conformance suite: mocha cases that any `Backend` implementation runs to show it
 * keeps the contracts of `lib/backend/backend.ts` and `lib/session/session.ts`.
 *
 * ```ts
 * // spec/my-backend.spec.ts (run by mocha)
 * import { backendConformance } from 'mqtt-broker-framework/backend/conformance'
 * backendConformance('MyBackend', () => new MyBackend({ maxQueuedMessages: 5 }), { maxQueuedMessages: 5 })
 * ```
 *
 * The suite drives the backend only through `Backend` and `Session`, the way the engine does, with
 * fake `ClientHandle`s that record deliveries and closes. See docs/backends.md.
 */
import type { Awaitable } from '../../util/awaitable.js'
import type { Backend } from '../backend.js'
import { Harness, mochaGlobals } from './harness.js'
import type { BackendFeatures } from './harness.js'
import { offlineCases } from './offline-cases.js'
import { recordCases } from './record-cases.js'
import { retainedCases } from './retained-cases.js'
import { routingCases } from './routing-cases.js'
import { sessionCases } from './session-cases.js'
import { sharedCases } from './shared-cases.js'
import { mqtt5Cases } from './mqtt5-cases.js'
import { accessCases } from './access-cases.js'
import { tenantCases } from './tenant-cases.js'

export { FakeClient, message, sub } from './harness.js'
export type { BackendFeatures, Delivery } from './harness.js'

/**
 * Declares the conformance cases for a backend as one mocha `describe` block named
 * `${name} conformance`. Call it at the top level of a mocha spec file (it uses mocha's globals
 * `describe`, `it`, `beforeEach` and `afterEach`, and throws when they are missing).
 *
 * @param name shown in the test report.
 * @param factory makes a fresh, empty backend for each case; the suite calls `close()` on it
 *   after the case. It may return a promise (connect to a database, flush it, ...).
 * @param features optional abilities and bounds of the backend; cases that need an ability the
 *   backend lacks are not declared. Bounds (`maxQueuedMessages`, `maxRetainedMessages`) must be
 *   the ones the factory configures.
 */
export function backendConformance(
  name: string,
  factory: () => Awaitable<Backend>,
  features: BackendFeatures = {}
): void {
  const mocha = mochaGlobals('backendConformance')
  const h = new Harness(factory, features)
  mocha.describe(`${name} conformance`, () => {
    mocha.beforeEach(() => h.start())
    mocha.afterEach(() => h.stop())
    sessionCases(h, mocha)
    routingCases(h, mocha)
    offlineCases(h, mocha)
    retainedCases(h, mocha)
    if (features.sharedSubscriptions !== false) sharedCases(h, mocha)
    recordCases(h, mocha)
    if (features.mqtt5 !== false) mqtt5Cases(h, mocha)
    accessCases(h, mocha)
    tenantCases(h, mocha)
  })
}
