/**
 * Control characters in client data: U+0001 to U+001F and U+007F to U+009F, which MQTT says should
 * not be sent and a receiver may refuse (3.1.1 section 1.5.3, 5.0 section 1.5.4), plus what log
 * lines must never carry raw (U+0000, U+2028, U+2029: line breaks for some readers). Pure helpers,
 * shared by the engine's logger and the backends' log lines.
 */

/** The control characters the specifications allow a server to refuse. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const REFUSABLE = /[\u0001-\u001f\u007f-\u009f]/u

/** Everything escaped in log lines. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_IN_LOGS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/gu

/** Whether `text` holds a control character U+0001–U+001F or U+007F–U+009F. */
export function hasControlCharacter(text: string): boolean {
  return REFUSABLE.test(text)
}

/**
 * `text` with every control character (C0, DEL, C1) and U+2028/U+2029 written as `\xNN` or `\uNNNN`,
 * so that client data can neither break a log line nor forge another one. Returns `text` itself
 * when there is nothing to escape.
 */
export function escapeControlCharacters(text: string): string {
  UNSAFE_IN_LOGS.lastIndex = 0
  if (!UNSAFE_IN_LOGS.test(text)) return text
  UNSAFE_IN_LOGS.lastIndex = 0
  return text.replace(UNSAFE_IN_LOGS, (c) => {
    const code = c.charCodeAt(0)
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
  })
}
