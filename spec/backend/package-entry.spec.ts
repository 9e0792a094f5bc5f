/**
 * The conformance suites are importable through the package's own entries, without mocha: the
 * `exports` map of package.json is what a backend author's `import` goes through, so this spec
 * builds the package the way it is published (package.json + dist/lib) in a temporary directory
 * and imports the documented paths from plain Node.js (no mocha, no tsx) by self-reference.
 */
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* tsFiles(path)
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path
  }
}

/** lib/ transpiled into `<dir>/dist/lib` (what `npm run build` emits, without the type check). */
async function transpileLib(dir: string): Promise<void> {
  for await (const file of tsFiles(join(root, 'lib'))) {
    const out = ts.transpileModule(await readFile(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true }
    })
    const target = join(dir, 'dist', relative(root, file)).replace(/\.ts$/, '.js')
    await mkdir(dirname(target), { recursive: true })
    await writeFile(target, out.outputText)
  }
}

/** Runs `script` (an ES module) with plain Node.js inside the package directory; its stdout. */
function run(dir: string, script: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1 })
    })
  })
}

describe('package entries of the conformance suites (exports map)', function () {
  this.timeout(120_000)
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mqtt-pkg-'))
    await writeFile(join(dir, 'package.json'), await readFile(join(root, 'package.json')))
    await symlink(await realpath(join(root, 'node_modules')), join(dir, 'node_modules'), 'dir')
    await transpileLib(dir)
  })

  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('imports mqtt-broker-framework/backend/conformance without mocha; declaring cases asks for mocha', async () => {
    const { name } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { name: string }
    const result = await run(
      dir,
      `const m = await import('${name}/backend/conformance')
       let refusal = ''
       try { m.backendConformance('x', () => { throw new Error('not called') }) } catch (error) { refusal = error.message }
       console.log(JSON.stringify({ suite: typeof m.backendConformance, fake: typeof m.FakeClient, refusal }))`
    )
    expect(result.stderr).to.equal('')
    expect(JSON.parse(result.stdout)).to.deep.equal({
      suite: 'function',
      fake: 'function',
      refusal: 'backendConformance() declares mocha suites: call it from a mocha spec file'
    })
  })

  it('imports mqtt-broker-framework/client/store/conformance without mocha', async () => {
    const { name } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { name: string }
    const result = await run(dir, `const m = await import('${name}/client/store/conformance'); console.log(typeof m.storeConformance)`)
    expect(result.stderr).to.equal('')
    expect(result.stdout.trim()).to.equal('function')
  })
})
