/** Brokers for specs: a `Broker` on a fresh `MemoryBackend`, closed by the teardown registry. */
import { Broker } from '../../lib/broker/broker.js'
import { MAX_PACKET_SIZE } from '../../lib/broker/options.js'
import type { BrokerOptions } from '../../lib/broker/options.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { MemoryBackendOptions } from '../../lib/backend/memory-backend.js'
import type { Teardown } from './teardown.js'

/** Options of `makeBroker`: broker options without `backend`, plus the backend's. */
export interface TestBrokerOptions extends Partial<BrokerOptions> {
  memory?: MemoryBackendOptions
}

/**
 * A broker with a MemoryBackend (unless `backend` is given), closed after the test. Specs run with
 * the protocol's largest packet size and no maximum keepalive unless they set them (so CONNACK
 * carries neither Maximum Packet Size nor Server Keep Alive); the defaults are checked in the
 * abuse-*.spec.ts files. With a `clock` (a `VirtualClock`), the MemoryBackend reads the same time.
 */
export function makeBroker(teardown: Teardown, options: TestBrokerOptions = {}): Broker {
  const { memory, ...rest } = options
  // A virtual clock drives the backend's expiry too, unless the spec gave the backend its own.
  const clock = rest.clock
  const backend = rest.backend ?? new MemoryBackend(clock === undefined ? memory : { now: () => clock.now(), ...memory })
  return teardown.add(
    new Broker({ logger: silentLogger, maximumPacketSize: MAX_PACKET_SIZE, maxKeepalive: 0, ...rest, backend }),
    (broker) => broker.close()
  )
}
