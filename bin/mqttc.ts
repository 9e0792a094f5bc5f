#!/usr/bin/env node
/**
 * `mqttc`: the command-line MQTT client (publish, subscribe, request/response, health check) with
 * pascaldekloe mqttc's exit statuses and both mqttc's and mosquitto_pub/sub's flags. See
 * `mqttc --help` and docs/cli.md.
 */
import { runMqttc } from '../lib/cli/mqttc.js'

runMqttc(process.argv.slice(2)).then(
  (code) => exitAfterFlush(code),
  (error: unknown) => {
    process.stderr.write(`mqttc: ${error instanceof Error ? error.message : String(error)}\n`)
    exitAfterFlush(1)
  }
)

/** Exit once what was written to stdout has left (a pipe is asynchronous); EPIPE then is no news. */
function exitAfterFlush(code: number): void {
  process.exitCode = code
  if (process.stdout.writableLength === 0 || process.stdout.destroyed) process.exit(code)
  process.stdout.once('error', () => process.exit(code))
  process.stdout.write('', () => process.exit(code))
}
