/**
 * Where a broker's garbage comes from, from V8 sampling heap profiles that count objects which died
 * young (what `per-message.ts --profile DIR` writes per window): bytes per message allocated by the
 * engine (the top frame is in lib/), by the broker's $SYS publisher (any frame in lib/broker/sys.ts)
 * and by Node.js itself (streams, timers, the tick queue: everything else), plus the largest
 * allocating functions. Inlined functions count in the function they were inlined into.
 *
 *   node --import tsx benchmarks/broker/heap-share.ts --messages 20000 DIR/*.heapprofile
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number }
  selfSize: number
  children: HeapNode[]
}

const args = process.argv.slice(2)
let messages = 1
const files: string[] = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--messages') messages = Number(args[++i])
  else files.push(args[i]!)
}

for (const file of files) {
  const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head
  const groups = { engine: 0, sys: 0, node: 0 }
  const byFunction = new Map<string, number>()
  const walk = (node: HeapNode, inSys: boolean): void => {
    const url = node.callFrame.url
    const sys = inSys || url.endsWith('/lib/broker/sys.ts')
    if (node.selfSize > 0) {
      const group = sys ? 'sys' : /\/lib\//.test(url) ? 'engine' : 'node'
      groups[group] += node.selfSize
      const name = `${node.callFrame.functionName || '(anonymous)'} ${url.replace(/^.*\/(lib\/)/, '$1').replace(/^node:/, '')}`
      byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize)
    }
    for (const child of node.children) walk(child, sys)
  }
  walk(head, false)
  const per = (bytes: number): string => (bytes / messages).toFixed(0)
  const total = groups.engine + groups.sys + groups.node
  process.stdout.write(`${basename(file)}: ${per(total)} B per message: engine ${per(groups.engine)}, Node.js ${per(groups.node)}, $SYS ${per(groups.sys)}\n`)
  for (const [name, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    process.stdout.write(`  ${per(bytes).padStart(5)}  ${name}\n`)
  }
}
