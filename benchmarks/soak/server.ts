/**
 * The soak target: our `Broker` with a `MemoryBackend` and default options (every limit at its
 * default), TCP on 127.0.0.1 port 0. Prints `listening <port>`; stops on SIGTERM.
 */
import { Broker, MemoryBackend } from '../../lib/index.js'
import { createLogger } from '../../lib/broker/logger.js'

const broker = new Broker({ backend: new MemoryBackend(), logger: createLogger('error') })
const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
process.stdout.write(`listening ${port}\n`)
process.on('SIGTERM', () => {
  const hard = setTimeout(() => process.exit(0), 2000)
  void broker.close().then(() => {
    clearTimeout(hard)
    process.exit(0)
  })
})
