import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { expect } from 'chai'
import { findCycles, importGraph, importSpecifiers, isStrict } from '../../scripts/check-cycles.js'

describe('check-cycles – the import cycle check of lib/', () => {
  let root: string

  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  const cyclesOf = (dir: string): string[][] => findCycles(importGraph(join(root, dir))).map((c) => c.map((f) => relative(root, f)))

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cycles-'))
  })

  afterEach(() => {
    rmSync(root, { recursive: true, force: true })
  })

  it('reads imports, type-only imports, re-exports and import() calls, relative ones only', () => {
    const source = [
      "import { a } from './a.js'",
      "import type { B } from '../b.js'",
      "export { c } from './c/index.js'",
      "import { Subject } from 'rxjs'",
      "const d = await import('./d.js')"
    ].join('\n')
    expect(importSpecifiers(source)).to.deep.equal(['./a.js', '../b.js', './c/index.js', './d.js'])
  })

  it('finds a cycle through a type-only import, and a cycle of three', () => {
    write('lib/backend/a.ts', "import { b } from './b.js'\nexport const a = b\n")
    write('lib/backend/b.ts', "import type { A } from './a.js'\nexport const b = 1\nexport type B = A\n")
    write('lib/broker/x.ts', "import './y.js'\n")
    write('lib/broker/y.ts', "import './sub/z.js'\n")
    write('lib/broker/sub/z.ts', "export * from '../x.js'\n")
    write('lib/broker/free.ts', "import './x.js'\n")
    const cycles = cyclesOf('lib')
    expect(cycles).to.have.deep.members([
      ['lib/backend/a.ts', 'lib/backend/b.ts'],
      ['lib/broker/sub/z.ts', 'lib/broker/x.ts', 'lib/broker/y.ts']
    ])
  })

  it('fails for every cycle in lib/, and a narrower list fails only for its layers', () => {
    expect(isStrict(['lib/backend/keyv/a.ts', 'lib/backend/keyv/b.ts'])).to.equal(true)
    expect(isStrict(['lib/broker/client.ts', 'lib/session/session.ts'])).to.equal(true)
    // lib/broker joined the strict layers once the split of the Client hub removed its cycles.
    expect(isStrict(['lib/broker/client.ts', 'lib/broker/core.ts'])).to.equal(true)
    expect(isStrict(['lib/client/client.ts', 'lib/client/options.ts'])).to.equal(true)
    expect(isStrict(['lib/auth/acl.ts', 'lib/auth/acl-template.ts'])).to.equal(true)
    expect(isStrict(['library/a.ts'])).to.equal(false)
    expect(isStrict(['lib/backend-extra/a.ts'], ['lib/backend'])).to.equal(false)
    expect(isStrict(['lib/client/a.ts'], ['lib/backend', 'lib/broker'])).to.equal(false)
  })

  it('finds no cycle in a chain, and resolves a folder import to its index.ts', () => {
    write('lib/packet/a.ts', "import './b.js'\nimport './c/index.js'\n")
    write('lib/packet/b.ts', 'export const b = 1\n')
    write('lib/packet/c/index.ts', "import '../b.js'\n")
    expect(cyclesOf('lib')).to.deep.equal([])
    expect([...(importGraph(join(root, 'lib')).get(join(root, 'lib/packet/a.ts')) ?? [])].map((f) => relative(root, f))).to.deep.equal([
      'lib/packet/b.ts',
      'lib/packet/c/index.ts'
    ])
  })

  it('finds no cycle in lib/ of this repository', () => {
    const project = join(dirname(new URL(import.meta.url).pathname), '../..')
    const strict = findCycles(importGraph(join(project, 'lib')))
      .map((c) => c.map((f) => relative(project, f)))
      .filter((c) => isStrict(c))
    expect(strict).to.deep.equal([])
  })
})
