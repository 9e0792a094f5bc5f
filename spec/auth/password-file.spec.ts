import { expect } from 'chai'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { PasswordFile, PasswordFileError, parsePasswordFile } from '../../lib/auth/password-file.js'
import { hashPassword, parseHash, verifyPassword } from '../../lib/auth/password-hash.js'
import { runPasswd } from '../../lib/auth/passwd-command.js'
import type { PasswdIo } from '../../lib/auth/passwd-command.js'

/** Collects what is written to it. */
class Sink extends PassThrough {
  text = ''
  constructor() {
    super()
    this.on('data', (c: Buffer) => (this.text += c.toString()))
  }
}

function io(input: string): PasswdIo & { stdout: Sink; stderr: Sink } {
  return { stdin: Readable.from([input]), stdout: new Sink(), stderr: new Sink() }
}

describe('password hashes and files', function () {
  this.timeout(20000)
  let dir = ''
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'passwd-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('hashes with salted scrypt in the versioned format and verifies', async () => {
    const a = await hashPassword('s3cret')
    const b = await hashPassword('s3cret')
    expect(a).to.match(/^\$scrypt\$v=1\$n=16384,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
    expect(a).to.not.equal(b)
    expect(await verifyPassword(parseHash(a), 's3cret')).to.equal(true)
    expect(await verifyPassword(parseHash(a), 's3cret ')).to.equal(false)
  })

  it('reads a Mosquitto password file as-is ($7$ PBKDF2-SHA512 and $6$ SHA-512, made by mosquitto_passwd)', async () => {
    const file = join(dir, 'mosquitto.passwd')
    const made = [
      spawnSync('mosquitto_passwd', ['-c', '-b', file, 'alice', 'wonder land']),
      spawnSync('mosquitto_passwd', ['-b', '-H', 'sha512', file, 'bob', 'hunter2'])
    ]
    for (const r of made) expect(r.status, r.stderr?.toString()).to.equal(0)
    const text = readFileSync(file, 'utf8')
    expect(text).to.match(/^alice:\$7\$/m)
    expect(text).to.match(/^bob:\$6\$/m)
    const users = new PasswordFile(file)
    expect(await users.verify('alice', 'wonder land')).to.equal('ok')
    expect(await users.verify('alice', 'wonderland')).to.equal('bad')
    expect(await users.verify('bob', 'hunter2')).to.equal('ok')
    expect(await users.verify('bob', 'hunter3')).to.equal('bad')
    expect(await users.verify('carol', 'hunter2')).to.equal('unknown')
  })

  it('names the file and line of a bad entry, and never prints the hash', () => {
    const secret = '$scrypt$v=9$n=2,r=1,p=1$AAAA$BBBB'
    const text = `# users\nalice:${secret}\n`
    expect(() => parsePasswordFile(text, 'users.txt')).to.throw(PasswordFileError, 'users.txt:2')
    try {
      parsePasswordFile(text, 'users.txt')
    } catch (error) {
      expect((error as Error).message).to.not.include('BBBB')
    }
    expect(() => parsePasswordFile('alice\n', 'f')).to.throw(PasswordFileError, 'f:1: expected user:hash')
  })

  it('keeps the previous users when a reload finds a bad file', async () => {
    const file = join(dir, 'users')
    writeFileSync(file, `alice:${await hashPassword('a')}\n`)
    const users = new PasswordFile(file)
    writeFileSync(file, 'garbage\n')
    expect(() => users.reload()).to.throw(PasswordFileError)
    expect(await users.verify('alice', 'a')).to.equal('ok')
  })

  it('an unknown user costs as much time as a wrong password (checked against a dummy hash)', async () => {
    const file = join(dir, 'users')
    writeFileSync(file, `alice:${await hashPassword('right')}\n`)
    const users = new PasswordFile(file)
    const time = async (user: string): Promise<number> => {
      const times: number[] = []
      for (let i = 0; i < 5; i++) {
        const start = process.hrtime.bigint()
        await users.verify(user, 'wrong')
        times.push(Number(process.hrtime.bigint() - start) / 1e6)
      }
      return times.sort((x, y) => x - y)[2]!
    }
    const bad = await time('alice')
    const unknown = await time('nobody')
    // Without the dummy check an unknown user would answer in microseconds; scrypt takes milliseconds.
    expect(unknown).to.be.greaterThan(bad * 0.5)
    expect(bad).to.be.greaterThan(unknown * 0.5)
  })
})

describe('mqtt-broker passwd', function () {
  this.timeout(20000)
  let dir = ''
  let file = ''
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'passwd-'))
    file = join(dir, 'users')
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('adds, changes and deletes users from standard input, keeping comments; mode 0600', async () => {
    writeFileSync(file, '# our users\n')
    const add = io('first pw\n')
    expect(await runPasswd([file, 'alice'], add)).to.equal(0)
    expect(add.stdout.text).to.equal('added user alice\n')
    expect(await runPasswd([file, 'bob'], io('bob pw\n'))).to.equal(0)
    let users = new PasswordFile(file)
    expect(await users.verify('alice', 'first pw')).to.equal('ok')
    expect(await users.verify('bob', 'bob pw')).to.equal('ok')
    expect(statSync(file).mode & 0o777).to.equal(0o600)

    const change = io('second pw\n')
    expect(await runPasswd([file, 'alice'], change)).to.equal(0)
    expect(change.stdout.text).to.equal('changed password of user alice\n')
    users = new PasswordFile(file)
    expect(await users.verify('alice', 'first pw')).to.equal('bad')
    expect(await users.verify('alice', 'second pw')).to.equal('ok')

    expect(await runPasswd(['-D', file, 'bob'], io(''))).to.equal(0)
    const text = readFileSync(file, 'utf8')
    expect(text.startsWith('# our users\nalice:$scrypt$v=1$')).to.equal(true)
    expect(text).to.not.include('bob')
    expect(text).to.not.include('second pw')
    expect(await runPasswd(['-D', file, 'bob'], io(''))).to.equal(1)
  })

  it('prompts twice without echo on a terminal', async () => {
    const stdin = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode: (raw: boolean) => void }
    const modes: boolean[] = []
    stdin.isTTY = true
    stdin.setRawMode = (raw) => void modes.push(raw)
    const streams = { stdin, stdout: new Sink(), stderr: new Sink() }
    const done = runPasswd([file, 'carol'], streams)
    stdin.write('pw1x\u007f\r')
    await new Promise((resolve) => setTimeout(resolve, 20))
    stdin.write('pw1\r')
    expect(await done).to.equal(0)
    expect(streams.stderr.text).to.equal('Password: \nReenter password: \n')
    expect(modes).to.deep.equal([true, false, true, false])
    expect(await new PasswordFile(file).verify('carol', 'pw1')).to.equal('ok')
  })

  it('stores SCRAM-SHA-256 credentials with --scram', async () => {
    expect(await runPasswd(['--scram', file, 'dave'], io('pw\n'))).to.equal(0)
    const users = new PasswordFile(file)
    expect(users.scram(undefined, 'dave')?.iterations).to.equal(4096)
    expect(await users.verify('dave', 'pw')).to.equal('ok')
  })

  it('refuses bad usage, bad user names and files it cannot read, changing nothing', async () => {
    const usage = io('')
    expect(await runPasswd([file, 'alice', 'password-on-argv'], usage)).to.equal(2)
    expect(usage.stderr.text).to.include('never taken from the command line')
    expect(await runPasswd([file, 'a:b'], io('x\n'))).to.equal(2)
    writeFileSync(file, 'broken line\n')
    const broken = io('x\n')
    expect(await runPasswd([file, 'alice'], broken)).to.equal(1)
    expect(broken.stderr.text).to.include(`${file}:1`)
    expect(readFileSync(file, 'utf8')).to.equal('broken line\n')
    expect(await runPasswd([join(dir, 'new'), 'alice'], io(''))).to.equal(1)
  })
})
