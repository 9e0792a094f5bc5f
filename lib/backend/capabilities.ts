import type { Backend } from './backend.js'

/**
 * Checks what the engine is about to rely on against what `backend` declares
 * (`Backend.capabilities`). Throws a `TypeError` that says what to do when a `tenantResolver` is
 * configured for a backend that does not declare `tenants`: such a backend would put every
 * tenant's sessions, subscriptions and retained messages in one space, silently.
 */
export function checkBackendCapabilities(backend: Backend, needs: { tenants: boolean }): void {
  if (needs.tenants && backend.capabilities?.tenants !== true) {
    const name = (backend as { constructor?: { name?: string } }).constructor?.name ?? 'the backend'
    throw new TypeError(
      `a tenantResolver needs a backend that keeps tenants apart (capabilities.tenants), and ${name} does not declare it: ` +
        'wrap it in a TenantBackend, e.g. new TenantBackend(() => new MemoryBackend()), or use a KeyvBackend'
    )
  }
}
