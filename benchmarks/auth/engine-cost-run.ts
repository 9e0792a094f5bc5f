/**
 * Runs benchmarks/auth/engine-cost.ts for plain and ACL brokers (or other `--variants`) of one or
 * more checkouts, alternating processes (plain, ACL, plain, ACL… per checkout), each bundled with esbuild against
 * that checkout's lib/ as the benchmark servers are, and prints each run and the medians:
 *
 *   node --import tsx benchmarks/auth/engine-cost-run.ts [--roots /work/base,.] [--pairs 3]
 *     [--scenario fanin|fanout|both] [--variants plain,pass,wrap,acl] [--node-flags "..."] [--messages N] [--rounds 9]
 *
 * The ACL's cost is quoted per checkout as the difference of median ns per delivery, ACL − plain, on
 * the main thread (the broker's work: less disturbed by a loaded machine) and in the whole process
 * (with the garbage collector's and the compiler's background threads), each as the median of the
 * rounds and as the least round (the one least disturbed by other processes), medians over processes.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
let roots = ['.']
let pairs = 3
let scenario = 'both'
let variants = ['plain', 'acl']
let nodeFlags: string[] = []
const pass: string[] = []
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '--roots') roots = (args[++i] ?? '.').split(',')
  else if (a === '--pairs') pairs = Number(args[++i])
  else if (a === '--scenario') scenario = args[++i] ?? 'both'
  else if (a === '--node-flags') nodeFlags = (args[++i] ?? '').split(/\s+/).filter(Boolean)
  else if (a === '--variants') variants = (args[++i] ?? '').split(',')
  else if (a === '--messages' || a === '--rounds') pass.push(a, args[++i] ?? '')
  else throw new Error(`unknown argument ${a}`)
}

const esbuild = await import('esbuild')
// The pass-through decorator is taken from this checkout (an older one may not have it; it imports only types).
const source = readFileSync(join(here, 'engine-cost.ts'), 'utf8').replace("'./pass-through.js'", JSON.stringify(join(here, 'pass-through.ts')))
const outDir = resolve('.tmp/engine-cost')
mkdirSync(outDir, { recursive: true })
const bundles = new Map<string, string>()
for (const [k, root] of roots.entries()) {
  const outfile = join(outDir, `engine-cost-${process.pid}-${k}.mjs`)
  // The harness of this checkout, bound to the lib/ of `root`.
  await esbuild.build({ stdin: { contents: source, resolveDir: join(resolve(root), 'benchmarks/auth'), loader: 'ts', sourcefile: 'engine-cost.ts' },
    outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'silent' })
  bundles.set(root, outfile)
}

const figures = new Map<string, number[]>()
for (let p = 0; p < pairs; p++) {
  for (const root of roots) {
    for (const variant of variants) {
      const out = execFileSync(process.execPath, [...nodeFlags, bundles.get(root)!, '--scenario', scenario, '--variant', variant, ...pass], { encoding: 'utf8' }).trim()
      for (const line of out.split('\n')) {
        console.log(`${root} ${line}`)
        const m = /^(\w+) \w+: ([\d.]+) ns per delivery on the main thread, ([\d.]+) ns in the process .*least ([\d.]+) and ([\d.]+)/.exec(line)
        if (m === null) continue
        for (const [what, value] of [['main', m[2]], ['process', m[3]], ['least main', m[4]], ['least process', m[5]]] as const) {
          const key = `${m[1]} ${what} ${root} ${variant}`
          figures.set(key, [...(figures.get(key) ?? []), Number(value)])
        }
      }
    }
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
for (const s of ['fanin', 'fanout']) {
  for (const what of ['main', 'process', 'least main', 'least process']) {
    for (const root of roots) {
      const plain = figures.get(`${s} ${what} ${root} plain`)
      if (plain === undefined) continue
      const p = median(plain)
      const others = variants.filter((v) => v !== 'plain').map((v) => {
        const a = median(figures.get(`${s} ${what} ${root} ${v}`) ?? [NaN])
        return `${v} ${a.toFixed(1)} (${a >= p ? '+' : ''}${(a - p).toFixed(1)} ns, ${a >= p ? '+' : ''}${((a / p - 1) * 100).toFixed(1)} %)`
      })
      console.log(`${s} ${what.padEnd(13)} ${root}: ns per delivery, medians of ${plain.length} processes: plain ${p.toFixed(1)}, ${others.join(', ')}`)
    }
  }
}
