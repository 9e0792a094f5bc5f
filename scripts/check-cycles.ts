/**
 * Import cycle check of lib/ (run by `npm run lint`; `node --import tsx scripts/check-cycles.ts`).
 *
 * Builds the graph of relative imports and re-exports between the .ts files under lib/ (type-only
 * imports included: a cycle of types is still two modules that cannot be understood apart) with the
 * TypeScript parser, finds its strongly connected components, and prints each cycle.
 *
 * It FAILS (exit 1) for any cycle in lib/: the last ones went with the split of the Client hub
 * (lib/broker), the client's connection parts (lib/client) and the ACL rule types (lib/auth), issue
 * 12. `isStrict` takes a narrower list for a repository that must tolerate some cycles for a while.
 * (madge would do the same, but it is not a dependency of the project.)
 */

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'

/** Directories (relative to the checked root's parent) in which a cycle fails the check. */
export const STRICT = ['lib']

/** file → the files it imports (absolute paths of .ts files). */
export type ImportGraph = Map<string, Set<string>>

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...tsFiles(path))
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

/** The relative module specifiers a file imports or re-exports (static ones; `import()` too). */
export function importSpecifiers(source: string, fileName = 'file.ts'): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS)
  const out: string[] = []
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments
      if (arg !== undefined && ts.isStringLiteral(arg)) out.push(arg.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  return out.filter((s) => s.startsWith('./') || s.startsWith('../'))
}

/** The import graph of every .ts file under `root`. Imports that leave `root` are left out. */
export function importGraph(root: string): ImportGraph {
  const files = tsFiles(resolve(root))
  const known = new Set(files)
  const graph: ImportGraph = new Map()
  for (const file of files) {
    const targets = new Set<string>()
    for (const specifier of importSpecifiers(readFileSync(file, 'utf8'), file)) {
      const base = resolve(dirname(file), specifier)
      const candidates = [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')]
      const target = candidates.find((c) => known.has(c))
      if (target !== undefined) targets.add(target)
    }
    graph.set(file, targets)
  }
  return graph
}

/** The cycles of `graph`: its strongly connected components with more than one file, or a self-import (Tarjan). */
export function findCycles(graph: ImportGraph): string[][] {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const connect = (v: string): void => {
    index.set(v, counter)
    low.set(v, counter)
    counter++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop() as string
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || graph.get(v)?.has(v) === true) cycles.push(component.sort())
    }
  }
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v)
  return cycles
}

/** Whether a cycle (paths relative to the project) touches a STRICT directory. */
export function isStrict(cycle: readonly string[], strict: readonly string[] = STRICT): boolean {
  return cycle.some((file) => strict.some((dir) => file === dir || file.startsWith(`${dir}/`)))
}

function main(): number {
  const project = process.cwd()
  const rel = (file: string): string => relative(project, file).split(sep).join('/')
  const cycles = findCycles(importGraph(join(project, 'lib'))).map((cycle) => cycle.map(rel))
  let failed = 0
  for (const cycle of cycles) {
    const strict = isStrict(cycle)
    if (strict) failed++
    console.error(`${strict ? 'error' : 'warning'}: import cycle: ${cycle.join(' ↔ ')}`)
  }
  console.error(`import cycles in lib/: ${cycles.length} (${failed} in ${STRICT.join(', ')})`)
  return failed > 0 ? 1 : 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) process.exitCode = main()
