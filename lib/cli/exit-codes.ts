/**
 * `mqttc` exit statuses, as pascaldekloe's mqttc defines them (0, 1, 2, 5–9, 130, 143), with MQTT 5
 * CONNACK reason codes mapped onto 5–9 where they mean the same, 10 for any other refusal, 27 for
 * mosquitto_sub's `-W` and 141 for a closed stdout.
 */
import { ConnectionRefusedError } from '../client/index.js'
import { UsageError } from './args.js'

export const EXIT = {
  ok: 0,
  operational: 1,
  usage: 2,
  refusedProtocol: 5,
  refusedIdentifier: 6,
  refusedUnavailable: 7,
  refusedCredentials: 8,
  refusedNotAuthorized: 9,
  refusedOther: 10,
  waitExpired: 27,
  brokenPipe: 141,
  sigint: 130,
  sigterm: 143
} as const

/** MQTT 5 CONNACK reason code → exit status (3.x return codes arrive mapped to these). */
const REFUSALS = new Map<number, number>([
  [0x84, EXIT.refusedProtocol], // Unsupported Protocol Version (3.x: 1)
  [0x85, EXIT.refusedIdentifier], // Client Identifier not valid (3.x: 2)
  [0x88, EXIT.refusedUnavailable], // Server unavailable (3.x: 3)
  [0x89, EXIT.refusedUnavailable], // Server busy
  [0x9f, EXIT.refusedUnavailable], // Connection rate exceeded
  [0x86, EXIT.refusedCredentials], // Bad User Name or Password (3.x: 4)
  [0x8c, EXIT.refusedCredentials], // Bad authentication method
  [0x87, EXIT.refusedNotAuthorized], // Not authorized (3.x: 5)
  [0x8a, EXIT.refusedNotAuthorized] // Banned
])

/** The exit status for an error that ends the command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage
  if (error instanceof ConnectionRefusedError) return REFUSALS.get(error.reasonCode) ?? EXIT.refusedOther
  return EXIT.operational
}

/** The exit status table of `--help` and docs/cli.md. */
export const EXIT_TABLE = `  0    no error (also: -C count reached, -E, --retained-only done, health check ok)
  1    MQTT operational error: network, protocol, -timeout expired, a publish or
       subscription refused, session store failure (the reason is on stderr)
  2    illegal command invocation
  5    connection refused: unacceptable protocol version (MQTT 5: 0x84)
  6    connection refused: identifier rejected (0x85)
  7    connection refused: server unavailable (0x88, 0x89 busy, 0x9F rate)
  8    connection refused: bad user name or password (0x86, 0x8C auth method)
  9    connection refused: not authorized (0x87, 0x8A banned)
  10   connection refused for another MQTT 5 reason (the code is on stderr)
  27   -W seconds passed (as mosquitto_sub, even when messages arrived)
  130  SIGINT: closed without a normal DISCONNECT, so the broker publishes the will
  141  standard output closed (EPIPE, e.g. "mqttc sub ... | head -1")
  143  SIGTERM: in-flight QoS 1/2 settled (up to -timeout), then DISCONNECT`
