import { MalformedPacketError } from './errors.js'
import type { Reader } from './reader.js'
import { VALID_REASON_CODE_TABLE } from './reason-codes.js'

/** Read an MQTT 5 reason code and check it is one the packet type may carry (section 2.4). */
export function readReasonCode(r: Reader, type: keyof typeof VALID_REASON_CODE_TABLE, what: string): number {
  const code = r.u8(`${what} reason code`)
  checkReasonCode(code, type, what)
  return code
}

/** Refuse a reason code that the packet type may not carry. */
export function checkReasonCode(code: number, type: keyof typeof VALID_REASON_CODE_TABLE, what: string): void {
  if (VALID_REASON_CODE_TABLE[type][code] !== 1) {
    throw new MalformedPacketError(`${what}: reason code 0x${code.toString(16).padStart(2, '0')} is not valid here`)
  }
}

/** Check a reason code before encoding it. */
export function checkReasonCodeForEncode(code: number, type: keyof typeof VALID_REASON_CODE_TABLE, what: string): number {
  if (!Number.isInteger(code) || VALID_REASON_CODE_TABLE[type][code] !== 1) {
    throw new TypeError(`${what}: reason code ${String(code)} is not valid for this packet`)
  }
  return code
}
