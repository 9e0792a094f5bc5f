/** The largest value a Variable Byte Integer can hold [MQTT-1.5.5] (also the largest remaining length). */
export const MAX_VARINT = 268_435_455

/** Bytes a Variable Byte Integer needs for `value` (1..4). */
export function varintLength(value: number): number {
  return value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4
}

/** Write `value` as a Variable Byte Integer at `offset`; returns the offset after it. */
export function writeVarint(target: Buffer, offset: number, value: number): number {
  do {
    let byte = value & 0x7f
    value >>>= 7
    if (value > 0) byte |= 0x80
    target[offset++] = byte
  } while (value > 0)
  return offset
}
