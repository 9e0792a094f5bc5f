/**
 * Test certificates made with `openssl` (Debian's) in a fresh temporary directory: a CA, a server
 * certificate for 127.0.0.1 / ::1 / localhost signed by it, and a client certificate signed by it.
 * Everything is PEM; keys are unencrypted unless `passphrase` is given for the server key.
 *
 * ```ts
 * const certs = await makeCerts()           // once per suite (a few hundred ms)
 * after(() => certs.remove())
 * tls.connect({ port, ca: certs.ca.cert })
 * ```
 *
 * `makeCerts({ dir })` reuses a directory (e.g. to rotate: call it again with other names), and
 * `issueServer(certs, name)` signs a further server certificate with the same CA (certificate
 * rotation: same CA, new serial and key).
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** One key pair: file paths and their PEM contents. */
export interface CertPair {
  keyFile: string
  certFile: string
  key: string
  cert: string
}

/** What `makeCerts` made. */
export interface TestCerts {
  dir: string
  ca: CertPair
  server: CertPair
  client: CertPair
  /** The passphrase of the server key, when one was asked for. */
  passphrase: string | undefined
  /** Deletes the directory. */
  remove(): Promise<void>
}

/** Options of `makeCerts`. */
export interface MakeCertsOptions {
  /** Directory to write to (default: a new one under the system's temporary directory). */
  dir?: string
  /** Encrypt the server key with this passphrase (AES-256). */
  passphrase?: string
  /** Common name of the client certificate (default `client-1`). */
  clientName?: string
  /** Days of validity (default 2). */
  days?: number
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd })
  } catch (error) {
    const e = error as Error & { stderr?: string }
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`)
  }
}

async function pair(dir: string, name: string): Promise<CertPair> {
  const keyFile = join(dir, `${name}.key`)
  const certFile = join(dir, `${name}.crt`)
  return { keyFile, certFile, key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') }
}

/**
 * Signs a certificate for `name` with the CA in `dir` (`ca.key`, `ca.crt`): a server certificate
 * (SAN 127.0.0.1, ::1, localhost; extended key usage serverAuth) or a client one (clientAuth).
 */
async function issue(
  dir: string,
  name: string,
  options: { kind: 'server' | 'client'; commonName: string; days: number; passphrase?: string | undefined }
): Promise<CertPair> {
  const ext =
    options.kind === 'server'
      ? 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n'
      : `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:${options.commonName}\n`
  await writeFile(join(dir, `${name}.ext`), ext)
  await openssl(['genrsa', '-out', `${name}.plain.key`, '2048'], dir)
  await openssl(['req', '-new', '-key', `${name}.plain.key`, '-subj', `/CN=${options.commonName}/O=Test`, '-out', `${name}.csr`], dir)
  await openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', String(options.days), '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`],
    dir
  )
  if (options.passphrase === undefined) {
    await openssl(['pkey', '-in', `${name}.plain.key`, '-out', `${name}.key`], dir)
  } else {
    await openssl(['pkey', '-in', `${name}.plain.key`, '-aes256', '-passout', `pass:${options.passphrase}`, '-out', `${name}.key`], dir)
  }
  await rm(join(dir, `${name}.plain.key`))
  return pair(dir, name)
}

/** Makes a CA, a server and a client certificate (see the module comment). */
export async function makeCerts(options: MakeCertsOptions = {}): Promise<TestCerts> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'mqtt-certs-')))
  const days = options.days ?? 2
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', String(days), '-subj', '/CN=Test CA/O=Test', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  const ca = await pair(dir, 'ca')
  const server = await issue(dir, 'server', { kind: 'server', commonName: 'localhost', days, passphrase: options.passphrase })
  const client = await issue(dir, 'client', { kind: 'client', commonName: options.clientName ?? 'client-1', days })
  return { dir, ca, server, client, passphrase: options.passphrase, remove: () => rm(dir, { recursive: true, force: true }) }
}

/** Signs another server certificate (new key) named `name` with the CA of `certs` (rotation). */
export function issueServer(certs: TestCerts, name: string, commonName = 'localhost'): Promise<CertPair> {
  return issue(certs.dir, name, { kind: 'server', commonName, days: 2 })
}

/** Signs another client certificate named `name` (common name `commonName`) with the CA of `certs`. */
export function issueClient(certs: TestCerts, name: string, commonName: string): Promise<CertPair> {
  return issue(certs.dir, name, { kind: 'client', commonName, days: 2 })
}
