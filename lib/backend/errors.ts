/**
 * The errors of the Backend contract, in one place: what a backend throws (or rejects with) and
 * what the engine and the operating parts recognise. A backend imports them from here.
 *
 * Any `MqttError` carries the reason code the client gets: the engine answers a refused operation
 * with it (PUBACK/PUBREC, SUBACK, CONNACK or DISCONNECT as the protocol allows) and logs the error.
 * Other errors count as 0x80 Unspecified error / "implementation specific error".
 *
 * - `BackendUnavailableError` (0x88 Server unavailable): the store behind the backend cannot be
 *   reached, or did not answer in time; the operation was not done or its outcome is unknown. The
 *   engine sends no acknowledgement for it.
 * - `SessionTakenOverError` (0x8E Session taken over): a write from a connection whose session was
 *   taken over by another connection (fencing, see `Session`).
 * - `TenantError`: a tenant resolver refused the connection (with the reason code to answer).
 * - `NotInspectableError`: an optional `BackendInspection` method is missing (the HTTP API
 *   answers 501).
 */
import { MqttError } from '../packet/errors.js'
import { ReasonCode } from '../packet/reason-codes.js'

export { MqttError, SessionTakenOverError } from '../packet/errors.js'
export { TenantError } from '../tenancy/resolvers.js'

/**
 * The store behind the backend cannot be reached (or did not answer in time): the operation was
 * not done, or its outcome is unknown. Reason code 0x88 Server unavailable; the engine sends no
 * acknowledgement.
 */
export class BackendUnavailableError extends MqttError {
  override name = 'BackendUnavailableError'
  constructor(message = 'the backend is unavailable', cause?: unknown) {
    super(ReasonCode.ServerUnavailable, message, cause === undefined ? {} : { cause })
  }
}

/** A tenant's backend lacks an optional `BackendInspection` method (the HTTP API answers 501). */
export class NotInspectableError extends Error {
  override name = 'NotInspectableError'
  constructor(readonly method: string) {
    super(`the backend does not implement ${method}`)
  }
}
