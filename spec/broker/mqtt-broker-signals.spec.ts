import { expect } from 'chai'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBroker } from '../helpers/broker-process.js'
import { useTeardown } from '../helpers/teardown.js'

/**
 * The `listening` lines promise that a SIGTERM from now on stops the broker cleanly (exit 0). A
 * supervisor that signals the moment it reads the first line must not find the signal handlers
 * missing (the default action would kill the process: exit code null). Many listeners make the
 * printing long enough for the signal to land while it is under way.
 */
describe('bin/mqtt-broker – signals right after the listening line', function () {
  this.timeout(120000)
  const teardown = useTeardown()
  let dir = ''

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mqtt-broker-signals-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('SIGTERM sent as soon as the first listening line arrives: exit 0, every time', async () => {
    const listeners = Array.from({ length: 200 }, (_, i) => `  - { name: l${i}, kind: tcp, host: 127.0.0.1, port: 0 }`)
    const config = join(dir, 'many.yaml')
    await writeFile(config, ['listeners:', ...listeners, 'log:', '  level: warn', ''].join('\n'))
    for (let round = 0; round < 2; round++) {
      const run = startBroker(['--config', config], { teardown })
      run.child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('listening on') && run.child.signalCode === null) run.child.kill('SIGTERM')
      })
      const code = await run.exit
      expect(code, `round ${round}: exit code (null: killed by the signal)\n${run.stderr}`).to.equal(0)
      expect(run.stdout).to.include('listening on')
    }
  })
})
