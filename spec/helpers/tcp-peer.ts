import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { Peer } from './flow.js'
import type { Teardown } from './teardown.js'

/** A `Peer` over a real TCP connection to 127.0.0.1:`port`, destroyed by `teardown`. */
export async function openTcpPeer(teardown: Teardown, port: number): Promise<Peer> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => resolve(s))
    s.once('error', reject)
  })
  teardown.add(socket, (s) => s.destroy())
  socket.on('error', () => undefined)
  return new Peer({ stream: socket })
}
