#!/usr/bin/env node
/**
 * `mqtt-bench`: load scenarios against any MQTT broker, side-by-side comparisons and SVG charts.
 * See `mqtt-bench --help` and docs/cli.md.
 */
import { runBench } from '../lib/bench/cli.js'
import { processIo } from '../lib/cli/io.js'

runBench(process.argv.slice(2), processIo()).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`mqtt-bench: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
