/**
 * The access-control decorator is transparent: the whole backend conformance suite passes through
 * it, over the MemoryBackend, a TenantBackend and a backend written only against the contract (the
 * promise-answering AsyncBackend of the specs). Every backendConformance run (these, and KeyvBackend's
 * in spec/integration/redis/conformance.spec.ts) also runs the "access control decorator" cases.
 */
import { withAccessControl } from '../../lib/auth/access-backend.js'
import type { AccessControlOptions } from '../../lib/auth/access-control.js'
import { backendConformance } from '../../lib/backend/conformance/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { AsyncBackend } from '../helpers/async-backend.js'

// Everything allowed but one topic nobody uses: every delivery goes through the read check.
const permissive: AccessControlOptions = {
  acl: [{ filter: 'never/used/#', access: 'deny' }],
  aclDefault: 'allow',
  bruteForce: false
}
const bounds = { maxQueuedMessages: 5, maxRetainedMessages: 8 }

backendConformance('AccessControlBackend(MemoryBackend)', () => withAccessControl(new MemoryBackend(bounds), permissive), {
  sharedSubscriptions: true,
  ...bounds
})

backendConformance(
  'AccessControlBackend(TenantBackend(MemoryBackend))',
  () => withAccessControl(new TenantBackend(() => new MemoryBackend(bounds)), permissive),
  { sharedSubscriptions: true, tenants: true, ...bounds }
)

backendConformance('AccessControlBackend(third-party AsyncBackend)', () => withAccessControl(new AsyncBackend(bounds), permissive), {
  sharedSubscriptions: true,
  ...bounds
})
