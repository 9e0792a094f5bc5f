/** Our broker (MemoryBackend, TCP on a free port) for `run.ts --broker ours`: prints the port, runs until killed. */
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'

const broker = new Broker({ backend: new MemoryBackend(), logger: silentLogger })
const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
process.stdout.write(`${port}\n`)
process.on('SIGTERM', () => void broker.close().then(() => process.exit(0)))
