/**
 * The PROXY protocol (HAProxy, versions 1 and 2): the header a load balancer sends before the
 * client's bytes to say where the connection really came from. A strict parser: anything that is
 * not exactly a v1 or v2 header is an error, and the connection is closed.
 *
 * Reference: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */
import { isIP } from 'node:net'
import type { Socket } from 'node:net'

/** The longest v1 header, CRLF included (section 2.1). */
const V1_MAX = 107
const V1_PREFIX = Buffer.from('PROXY ', 'latin1')
/** The v2 signature (section 2.2). */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V2_FIXED = 16

/** A malformed or unexpected PROXY protocol header. */
export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError'
}

/** A complete PROXY header. */
export interface ProxyHeader {
  /** 1 or 2. */
  readonly version: 1 | 2
  /** Bytes the header took; what follows is the client's own stream. */
  readonly length: number
  /**
   * The real client: absent for v1 `UNKNOWN`, v2 `LOCAL` (the proxy's own health check) and address
   * families other than IPv4/IPv6, where the connection's own peer address stands.
   */
  readonly source?: { readonly address: string; readonly port: number }
}

/**
 * Parse the header at the start of `buffer`. Returns undefined while more bytes are needed; throws
 * `ProxyProtocolError` as soon as the bytes cannot begin a valid header.
 */
export function parseProxyHeader(buffer: Buffer): ProxyHeader | undefined {
  if (buffer.length === 0) return undefined
  if (buffer[0] === V1_PREFIX[0]) return parseV1(buffer)
  if (buffer[0] === V2_SIGNATURE[0]) return parseV2(buffer)
  throw new ProxyProtocolError('no PROXY protocol header')
}

function startsWith(buffer: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buffer.length, prefix.length)
  return buffer.subarray(0, n).equals(prefix.subarray(0, n))
}

function parseV1(buffer: Buffer): ProxyHeader | undefined {
  if (!startsWith(buffer, V1_PREFIX)) throw new ProxyProtocolError('malformed PROXY v1 header')
  const end = buffer.indexOf('\r\n', 0, 'latin1')
  if (end < 0) {
    if (buffer.length >= V1_MAX) throw new ProxyProtocolError('PROXY v1 header longer than 107 bytes')
    return undefined
  }
  if (end + 2 > V1_MAX) throw new ProxyProtocolError('PROXY v1 header longer than 107 bytes')
  const line = buffer.toString('latin1', V1_PREFIX.length, end)
  const length = end + 2
  // "UNKNOWN" may be followed by anything up to CRLF, which the receiver ignores (section 2.1).
  if (line === 'UNKNOWN' || line.startsWith('UNKNOWN ')) return { version: 1, length }
  const parts = line.split(' ')
  if (parts.length !== 5) throw new ProxyProtocolError('malformed PROXY v1 header')
  const [protocol, source, destination, sourcePort, destinationPort] = parts as [string, string, string, string, string]
  const family = protocol === 'TCP4' ? 4 : protocol === 'TCP6' ? 6 : 0
  if (family === 0) throw new ProxyProtocolError(`unknown PROXY v1 protocol "${protocol}"`)
  if (isIP(source) !== family || isIP(destination) !== family) {
    throw new ProxyProtocolError(`PROXY v1 addresses are not ${protocol} addresses`)
  }
  const port = v1Port(sourcePort)
  v1Port(destinationPort)
  return { version: 1, length, source: { address: source, port } }
}

/** A v1 port: decimal, no leading zero, 0..65535 (section 2.1). */
function v1Port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) {
    throw new ProxyProtocolError(`PROXY v1 port "${text}" is invalid`)
  }
  return Number(text)
}

function parseV2(buffer: Buffer): ProxyHeader | undefined {
  if (!startsWith(buffer, V2_SIGNATURE)) throw new ProxyProtocolError('malformed PROXY v2 signature')
  if (buffer.length < V2_FIXED) return undefined
  const versionCommand = buffer[12]!
  if (versionCommand >> 4 !== 2) throw new ProxyProtocolError('unsupported PROXY protocol version')
  const command = versionCommand & 0x0f
  if (command > 1) throw new ProxyProtocolError(`unknown PROXY v2 command ${command}`)
  const familyProtocol = buffer[13]!
  const addressLength = buffer.readUInt16BE(14)
  const length = V2_FIXED + addressLength
  if (buffer.length < length) return undefined
  // LOCAL: the proxy speaks for itself (health checks); the address block is to be ignored.
  if (command === 0) return { version: 2, length }
  const family = familyProtocol >> 4
  const transport = familyProtocol & 0x0f
  if (family > 3 || transport > 2) throw new ProxyProtocolError('unknown PROXY v2 address family')
  if (family === 1) {
    if (addressLength < 12) throw new ProxyProtocolError('PROXY v2 IPv4 address block too short')
    const address = `${buffer[16]}.${buffer[17]}.${buffer[18]}.${buffer[19]}`
    return { version: 2, length, source: { address, port: buffer.readUInt16BE(24) } }
  }
  if (family === 2) {
    if (addressLength < 36) throw new ProxyProtocolError('PROXY v2 IPv6 address block too short')
    const groups: string[] = []
    for (let i = 0; i < 8; i++) groups.push(buffer.readUInt16BE(16 + i * 2).toString(16))
    return { version: 2, length, source: { address: compressIPv6(groups), port: buffer.readUInt16BE(48) } }
  }
  // UNSPEC or UNIX: no network address to report; the peer's own stands.
  return { version: 2, length }
}

/** The canonical text of an IPv6 address from its eight hex groups (longest zero run as `::`). */
function compressIPv6(groups: string[]): string {
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLength && j - i > 1) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  if (bestStart < 0) return groups.join(':')
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`
}

/**
 * Read a PROXY header from the start of `socket`. Resolves with the header once complete, the
 * bytes after it put back into the socket (`unshift`) for whoever reads next, the socket paused;
 * rejects with `ProxyProtocolError` for a malformed header or none within `timeoutMs`, or when the
 * socket closes first. The caller destroys the socket on rejection.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0)
    const finish = (error: Error | undefined, header?: ProxyHeader): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onClose)
      socket.pause()
      if (error !== undefined) {
        reject(error)
        return
      }
      const rest = received.subarray(header!.length)
      if (rest.length > 0) socket.unshift(rest)
      resolve(header!)
    }
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
      let header: ProxyHeader | undefined
      try {
        header = parseProxyHeader(received)
      } catch (error) {
        finish(error as Error)
        return
      }
      if (header !== undefined) finish(undefined, header)
    }
    const onClose = (): void => finish(new ProxyProtocolError('connection closed before the PROXY header'))
    const timer = setTimeout(() => finish(new ProxyProtocolError('no PROXY header in time')), timeoutMs)
    timer.unref()
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.once('error', onClose)
  })
}
