/** A CONNECT that the broker sets the session up for and then refuses, for the specs of delayed wills. */
import { expect } from 'chai'
import type { Broker } from '../../lib/broker/broker.js'
import type { ConnectProperties } from '../../lib/packet/types.js'
import { ended } from './events.js'
import { Peer } from './flow.js'

/**
 * An MQTT 5 CONNECT of `clientId` whose CONNACK does not fit in the `maximumPacketSize` it asks for
 * (give one smaller than the CONNACK with the broker's properties): the broker sets up the session,
 * then closes without CONNACK [MQTT-3.1.2-24]. Resolves once the connection's teardown is over.
 */
export async function refusedAfterSetup(broker: Broker, clientId: string, clean: boolean, properties: ConnectProperties): Promise<void> {
  const peer = new Peer(broker)
  const done = ended(broker, clientId)
  peer.send({ type: 'connect', protocolLevel: 5, clientId, clean, keepalive: 0, properties })
  await peer.waitClosed()
  await done
  expect(peer.takeReceived(), 'no CONNACK').to.deep.equal([])
}
