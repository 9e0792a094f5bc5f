/**
 * TLS for `tls` and `wss` listeners: PEM files read (and re-read), the server options built from
 * them, the client certificate turned into a `PeerCertificate`, and the user name a certificate
 * may give.
 */
import { watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { createSecureContext } from 'node:tls'
import type { SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls'
import type { PeerCertificate } from './connection.js'

/** Whether a TLS listener asks clients for a certificate, and what it does without a valid one. */
export type ClientCertificateMode = 'none' | 'optional' | 'required'

/** Which part of a verified client certificate becomes the MQTT user name. */
export type CertificateIdentity = 'cn' | 'subject' | 'dns' | 'email' | 'uri'

/** TLS settings of a `tls` or `wss` listener. File paths, PEM format. */
export interface TlsListenerConfig {
  /** The private key. */
  key: string
  /** The certificate chain (server certificate first). */
  cert: string
  /** CA certificates that client certificates must chain to (needed for `optional`/`required`). */
  ca?: string
  /** Passphrase of an encrypted key. */
  passphrase?: string
  /**
   * `none` (default): no client certificate asked for. `optional`: asked for; a client without
   * one, or with one that does not chain to `ca`, is still accepted (`PeerCertificate.authorized`
   * tells which). `required`: the handshake fails without a certificate that chains to `ca`.
   */
  clientCertificates?: ClientCertificateMode
  /**
   * Make the user name of a client that presented a verified certificate (authorized) from it,
   * replacing the CONNECT's: `cn` subject Common Name, `subject` the whole subject, `dns`/`email`/
   * `uri` the first Subject Alternative Name of that type. Default: the CONNECT's user name.
   */
  usernameFrom?: CertificateIdentity
  /** Lowest protocol version accepted (default `TLSv1.2`). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3'
  /** OpenSSL cipher list for TLS 1.2 (default Node's). */
  ciphers?: string
  /** Re-read the files when they change on disk (default true). */
  watch?: boolean
  /** Milliseconds a client may take to finish the handshake (default 10,000). */
  handshakeTimeout?: number
}

/** The PEM files of one listener, read and checked, and re-read on demand. */
export class TlsFiles {
  private loaded: { key: Buffer; cert: Buffer; ca: Buffer | undefined } | undefined = undefined
  private watchers: FSWatcher[] = []
  private debounce: NodeJS.Timeout | undefined = undefined

  constructor(
    /** The listener's name, for messages (updated once a port-0 listener knows its port). */
    public listener: string,
    readonly config: TlsListenerConfig
  ) {}

  /**
   * Read the files and check that they make a usable context (key matches certificate, PEM parses).
   * Rejects with an error naming the listener and the file; the previous files stay in force.
   * Resolves with true when something changed since the last load.
   */
  async load(): Promise<boolean> {
    const { config } = this
    const [key, cert, ca] = await Promise.all([
      this.read('key', config.key),
      this.read('cert', config.cert),
      config.ca === undefined ? undefined : this.read('ca', config.ca)
    ])
    const previous = this.loaded
    if (previous !== undefined && previous.key.equals(key) && previous.cert.equals(cert) && sameCa(previous.ca, ca)) {
      return false
    }
    const options = this.contextOptions({ key, cert, ca })
    try {
      createSecureContext(options)
    } catch (error) {
      throw new Error(`listener "${this.listener}": the TLS key/certificate cannot be used: ${(error as Error).message}`, { cause: error })
    }
    this.loaded = { key, cert, ca }
    return true
  }

  /** The options of the TLS server (after `load()`). */
  serverOptions(): TlsOptions {
    const mode = this.config.clientCertificates ?? 'none'
    return {
      ...this.secureContextOptions(),
      requestCert: mode !== 'none',
      rejectUnauthorized: mode === 'required',
      handshakeTimeout: this.config.handshakeTimeout ?? 10_000
    }
  }

  /** What `Server.setSecureContext` takes (after `load()`). */
  secureContextOptions(): SecureContextOptions {
    const loaded = this.loaded
    if (loaded === undefined) throw new Error(`listener "${this.listener}": TLS files not loaded`)
    return this.contextOptions(loaded)
  }

  /**
   * Call `onChange` (debounced) when anything changes in the folders of the files. The folders are
   * watched rather than the files, so that files replaced by a rename (how certificate tools and
   * Kubernetes secrets update) are still seen.
   */
  watch(onChange: () => void): void {
    const files = [this.config.key, this.config.cert, this.config.ca].filter((f): f is string => f !== undefined)
    for (const folder of new Set(files.map((f) => dirname(f)))) {
      const names = new Set(files.filter((f) => dirname(f) === folder).map((f) => basename(f)))
      try {
        const watcher = watch(folder, { persistent: false }, (_event, name) => {
          // Some platforms give no name; symlink swaps change other names: reload checks contents.
          if (name !== null && !names.has(name) && !name.startsWith('..')) return
          clearTimeout(this.debounce)
          this.debounce = setTimeout(onChange, 200)
          this.debounce.unref()
        })
        watcher.on('error', () => undefined)
        this.watchers.push(watcher)
      } catch {
        // A folder that cannot be watched: reloadCertificates() (SIGHUP) still works.
      }
    }
  }

  /** Stop watching. */
  close(): void {
    clearTimeout(this.debounce)
    for (const watcher of this.watchers) watcher.close()
    this.watchers = []
  }

  private contextOptions(files: { key: Buffer; cert: Buffer; ca: Buffer | undefined }): SecureContextOptions {
    const options: SecureContextOptions = {
      key: files.key,
      cert: files.cert,
      minVersion: this.config.minVersion ?? 'TLSv1.2'
    }
    if (files.ca !== undefined) options.ca = files.ca
    if (this.config.passphrase !== undefined) options.passphrase = this.config.passphrase
    if (this.config.ciphers !== undefined) options.ciphers = this.config.ciphers
    return options
  }

  private async read(what: string, path: string): Promise<Buffer> {
    try {
      return await readFile(path)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      throw new Error(`listener "${this.listener}": cannot read tls.${what} "${path}": ${code}`, { cause: error })
    }
  }
}

function sameCa(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b)
}

/** The client certificate of a TLS connection, when it presented one. */
export function peerCertificateOf(socket: TLSSocket): PeerCertificate | undefined {
  const x509 = socket.getPeerX509Certificate()
  if (x509 === undefined) return undefined
  const subjectLines = x509.subject.split('\n').filter((line) => line.length > 0)
  const cn = subjectLines.find((line) => line.startsWith('CN='))
  return {
    subject: subjectLines.join(','),
    commonName: cn === undefined ? undefined : cn.slice(3),
    subjectAltNames: x509.subjectAltName === undefined ? [] : x509.subjectAltName.split(', '),
    issuer: x509.issuer.split('\n').filter((line) => line.length > 0).join(','),
    fingerprint256: x509.fingerprint256,
    authorized: socket.authorized
  }
}

const SAN_PREFIX: Record<'dns' | 'email' | 'uri', string> = { dns: 'DNS:', email: 'email:', uri: 'URI:' }

/** The user name `from` makes of `certificate`; undefined when it is not verified or lacks that field. */
export function certificateUsername(certificate: PeerCertificate | undefined, from: CertificateIdentity | undefined): string | undefined {
  if (certificate === undefined || from === undefined || !certificate.authorized) return undefined
  if (from === 'cn') return certificate.commonName
  if (from === 'subject') return certificate.subject
  const prefix = SAN_PREFIX[from]
  const san = certificate.subjectAltNames.find((name) => name.startsWith(prefix))
  return san === undefined ? undefined : san.slice(prefix.length)
}
