/**
 * UNSUBSCRIBE with an invalid topic filter. "All Topic Names and Topic Filters MUST be at least one
 * character long" [MQTT-4.7.3-1]; wildcards only where [MQTT-4.7.1-2] [MQTT-4.7.1-3] allow them.
 * 3.1 and 3.1.1 UNSUBACK carries no code, so answering would report success for an invalid
 * request: the connection closes [MQTT-4.8.0-1]. MQTT 5 says it per filter: 0x8F Topic Filter
 * invalid (3.11.3), and the connection stays.
 */
import { expect } from 'chai'
import { makeBroker } from '../helpers/broker.js'
import { hex, RawClient } from '../helpers/socket.js'
import { useTeardown } from '../helpers/teardown.js'

const CONNECT: Record<3 | 4, Buffer> = {
  3: hex('10 0f | 0006 4d5149736470 | 03 | 02 | 0000 | 0001 61'),
  4: hex('10 0d | 0004 4d515454 | 04 | 02 | 0000 | 0001 61')
}
const CONNACK = hex('20 02 00 00')

describe('edges – UNSUBSCRIBE with an invalid topic filter', () => {
  const teardown = useTeardown()

  for (const level of [3, 4] as const) {
    for (const [what, unsubscribe] of [
      ['an empty topic filter', hex('a2 04 | 0001 | 0000')],
      ['a valid filter then an empty one', hex('a2 07 | 0001 | 0001 74 | 0000')],
      ['the filter "a#"', hex('a2 06 | 0001 | 0002 6123')]
    ] as const) {
      it(`level ${level}: ${what} closes the connection without UNSUBACK [MQTT-4.7.3-1] [MQTT-4.8.0-1]`, async () => {
        const broker = makeBroker(teardown)
        const client = await RawClient.open(teardown, broker)
        client.send(CONNECT[level])
        expect(await client.read(4)).to.deep.equal(CONNACK)
        client.send(unsubscribe)
        await client.waitClosed()
        expect(client.received).to.deep.equal(CONNACK)
      })
    }

    it(`level ${level}: a valid filter gets UNSUBACK`, async () => {
      const broker = makeBroker(teardown)
      const client = await RawClient.open(teardown, broker)
      client.send(CONNECT[level])
      client.send(hex('a2 05 | 0001 | 0001 74'))
      expect(await client.read(8)).to.deep.equal(Buffer.concat([CONNACK, hex('b0 02 0001')]))
    })
  }

  it('level 5: an empty topic filter gets UNSUBACK 0x8F Topic Filter invalid, the connection stays', async () => {
    const broker = makeBroker(teardown)
    const client = await RawClient.open(teardown, broker)
    client.send(hex('10 0e | 0004 4d515454 | 05 | 02 | 0000 | 00 | 0001 61'))
    expect(await client.read(5)).to.deep.equal(hex('20 03 00 00 00'))
    client.send(hex('a2 05 | 0001 | 00 | 0000'))
    client.send(hex('c0 00'))
    expect(await client.read(13)).to.deep.equal(hex('20 03 00 00 00 | b0 04 0001 00 8f | d0 00'))
  })
})
