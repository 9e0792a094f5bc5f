/**
 * The Redis backend (Keyv + `@keyv/redis` 5 on node-redis): `KeyvBackend`, its `KeyvSession` and
 * the error it raises while Redis is unreachable. See docs/redis-backend.md.
 */
export { KeyvBackend } from './keyv-backend.js'
export type { KeyvBackendEvent, KeyvBackendOptions, KeyvBackendStats } from './options.js'
export { KeyvSession } from './keyv-session.js'
export { BackendUnavailableError } from './redis-link.js'
export { validateTenant } from './keys.js'
