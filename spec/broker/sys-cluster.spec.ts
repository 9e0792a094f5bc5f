import { expect } from 'chai'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { useRedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { randomRoot, startNode } from '../integration/redis/nodes.js'

/**
 * `$SYS/broker/clients/total|disconnected` with two broker processes' worth of `Broker`s on one
 * real redis-server: the stored sessions are the cluster's, and so are the connected clients
 * subtracted from them (not only those of the process that publishes).
 */
describe('broker – $SYS client counts across a Redis cluster', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  it('clients/disconnected counts the sessions nobody in the cluster is connected to', async () => {
    const root = randomRoot()
    const a = teardown.add(new Broker({ backend: await startNode(redis.url, root), logger: silentLogger, sysInterval: 3600 }), (b) => b.close())
    const b = teardown.add(new Broker({ backend: await startNode(redis.url, root), logger: silentLogger, sysInterval: 3600 }), (b) => b.close())
    const portA = (await a.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    const portB = (await b.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    const connect = async (port: number, options: IClientOptions): Promise<MqttClient> =>
      teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 5, ...options }), (c) => c.endAsync(true))
    const persistent = { clean: false, properties: { sessionExpiryInterval: 3600 } }
    // Three clients on A, one of which leaves its session behind; two on B (one of them watches).
    await connect(portA, { clientId: 'a-1', ...persistent })
    await connect(portA, { clientId: 'a-2', ...persistent })
    const away = await connect(portA, { clientId: 'a-away', ...persistent })
    await away.endAsync()
    await connect(portB, { clientId: 'b-1', ...persistent })
    const watch = await connect(portB, { clientId: 'b-watch', ...persistent })
    const values = new Map<string, string>()
    watch.on('message', (topic, payload) => values.set(topic, payload.toString()))
    await watch.subscribeAsync('$SYS/broker/clients/+')
    // Published again until the away session is stored as away (its end reaches Redis
    // asynchronously) and the retained values have arrived.
    const deadline = Date.now() + 20_000
    while (values.get('$SYS/broker/clients/total') !== '5' || values.get('$SYS/broker/clients/disconnected') !== '1') {
      if (Date.now() > deadline) throw new Error(`not within 20 s: ${JSON.stringify([...values])}`)
      await b.publishSys()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(values.get('$SYS/broker/clients/connected')).to.equal('2')
    expect(values.get('$SYS/broker/clients/total')).to.equal('5')
  })
})
