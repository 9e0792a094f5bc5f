/**
 * Control characters in client ids and user names. 3.1.1 section 1.5.3 and 5.0 section 1.5.4: the
 * data "SHOULD NOT include" U+0001..U+001F and U+007F..U+009F, and a receiver may refuse a packet
 * that does. The broker refuses them by default (option `refuseControlCharacters`): a client id
 * with CONNACK 0x85 / return code 2 Identifier rejected ([MQTT-3.1.3-8] in 5.0, [MQTT-3.1.3-9] in
 * 3.1.1), a user name with 0x86 / return code 4 ("the data in the user name or password is
 * malformed"). Whatever the option, log lines escape control characters: a CR/LF in a client id
 * must not forge a log line.
 */
import { expect } from 'chai'
import { createLogger } from '../../lib/broker/logger.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnackPacket, ProtocolLevel } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { RawClient, tcpPeer } from '../helpers/socket.js'
import { useTeardown } from '../helpers/teardown.js'

function utf8(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8')
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes])
}

/** A CONNECT with these exact bytes: clean session, keepalive 0, `clientId`, optional `username`. */
function connectBytes(level: ProtocolLevel, clientId: string, username?: string): Buffer {
  const name = level === 3 ? 'MQIsdp' : 'MQTT'
  const flags = 0x02 | (username === undefined ? 0 : 0x80)
  const body = Buffer.concat([
    utf8(name),
    Buffer.from([level, flags, 0, 0]),
    level === 5 ? Buffer.from([0]) : Buffer.alloc(0),
    utf8(clientId),
    username === undefined ? Buffer.alloc(0) : utf8(username)
  ])
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}

// eslint-disable-next-line no-control-regex -- looking for control characters is the point
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u

describe('edges – control characters in client ids and user names', () => {
  const teardown = useTeardown()

  it('log lines escape them (a CR/LF in a client id forges no line), with refusal turned off', async () => {
    const lines: string[] = []
    const broker = makeBroker(teardown, {
      refuseControlCharacters: false,
      logger: createLogger('trace', (line) => lines.push(line))
    })
    const forged = 'a\r\n2026-01-01T00:00:00.000Z WARN forged\u0085\u2028'
    const client = await RawClient.open(teardown, broker)
    client.send(connectBytes(4, forged, 'u\u001b[31m'))
    expect(await client.read(4)).to.deep.equal(Buffer.from([0x20, 0x02, 0x00, 0x00]))
    client.send([0xe0, 0x00]) // DISCONNECT
    await client.waitClosed()
    const carrying = lines.filter((line) => line.includes('WARN forged'))
    expect(carrying.length, 'log lines carrying the client id').to.be.at.least(2)
    for (const line of lines) expect(RAW_CONTROL.test(line), JSON.stringify(line)).to.equal(false)
    expect(carrying[0]).to.include('a\\x0d\\x0a2026-01-01T00:00:00.000Z WARN forged\\x85\\u2028')
  })

  it('a refused CONNECT is logged escaped too', async () => {
    const lines: string[] = []
    const broker = makeBroker(teardown, { logger: createLogger('info', (line) => lines.push(line)) })
    const client = await RawClient.open(teardown, broker)
    client.send(connectBytes(4, 'x\ny'))
    await client.waitClosed()
    const refused = lines.filter((line) => line.includes('CONNECT refused'))
    expect(refused).to.have.length(1)
    expect(refused[0]).to.include('clientId="x\\x0ay"')
  })

  for (const level of [3, 4] as const) {
    for (const [what, clientId, username, code] of [
      ['a LF in the client id', 'a\nb', undefined, 2],
      ['U+001F in the client id', 'a\u001f', undefined, 2],
      ['U+007F in the client id', 'a\u007f', undefined, 2],
      ['U+009F in the client id', 'a\u009f', undefined, 2],
      ['an ESC in the user name', 'a', 'u\u001b', 4],
      ['U+0085 in the user name', 'a', 'u\u0085', 4]
    ] as const) {
      it(`level ${level}: ${what} is refused with return code ${code} and closed`, async () => {
        const broker = makeBroker(teardown)
        const client = await RawClient.open(teardown, broker)
        client.send(connectBytes(level, clientId, username))
        await client.waitClosed()
        expect(client.received).to.deep.equal(Buffer.from([0x20, 0x02, 0x00, code]))
      })
    }
  }

  it('level 5: CONNACK 0x85 for the client id, 0x86 for the user name', async () => {
    const broker = makeBroker(teardown)
    for (const [clientId, username, code] of [
      ['a\u0007', undefined, ReasonCode.ClientIdentifierNotValid],
      ['a', 'u\u0090', ReasonCode.BadUserNameOrPassword]
    ] as const) {
      const peer = await tcpPeer(teardown, broker, 5)
      peer.send(connectBytes(5, clientId, username))
      const ack = (await peer.next()) as ConnackPacket
      expect(ack).to.deep.include({ type: 'connack', sessionPresent: false, reasonCode: code })
      await peer.waitClosed()
    }
  })

  it('the neighbours of the ranges are accepted (U+0020, U+007E, U+00A0), and everything with the option off', async () => {
    for (const [options, clientId] of [
      [{}, 'a b~\u00a0'],
      [{ refuseControlCharacters: false }, 'a\nb\u0085']
    ] as const) {
      const broker = makeBroker(teardown, options)
      const client = await RawClient.open(teardown, broker)
      client.send(connectBytes(4, clientId, 'u\u00a0'))
      expect(await client.read(4)).to.deep.equal(Buffer.from([0x20, 0x02, 0x00, 0x00]))
    }
  })
})
