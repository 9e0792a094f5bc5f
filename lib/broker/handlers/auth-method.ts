import type { Backend, ClientHandle } from '../../backend/backend.js'

/**
 * Whether `backend` implements the MQTT 5 Authentication Method `method` for `client`
 * (`Backend.authenticationMethods`; a backend without it supports none) [MQTT-4.12.0-1].
 */
export function supportsAuthenticationMethod(backend: Backend, client: ClientHandle, method: string): boolean {
  const methods = backend.authenticationMethods?.(client)
  return methods !== undefined && methods.includes(method)
}
