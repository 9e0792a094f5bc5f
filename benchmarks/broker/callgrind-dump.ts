/**
 * Reads a callgrind dump (instructions.ts): self cost per function, summed into all, V8's garbage
 * collector and V8's compilers.
 */

/** A dump's instructions: all of them, and those of V8's garbage collector and compilers (by function name). */
export interface DumpCost {
  total: number
  gc: number
  compile: number
}

// V8's collector and compilers run in bursts whose timing the machine decides: they are counted
// apart, and the per-message figure is taken without them (both are printed).
const GC = /v8::internal::(?:\w+::)*\w*(?:Scaveng|Mark|Sweep|Evacuat|Compact|RememberedSet|SlotSet|GCTracer|MemoryReducer|ArrayBufferSweeper|Heap::|HeapVisitor|GlobalHandles|Ephemeron)/
const COMPILE = /v8::internal::(?:compiler|maglev|baseline|interpreter::Bytecode|Parser|Scanner|Compiler|OptimizingCompileDispatcher|RegisterAllocator|Zone)/

/**
 * Self cost per function of a callgrind dump (`--compress-strings=no`), summed into all, GC and
 * compilers. A cost line right after `calls=` is the call's inclusive cost and is skipped.
 */
export function dumpCost (text: string): DumpCost {
  const cost: DumpCost = { total: 0, gc: 0, compile: 0 }
  let kind: 'gc' | 'compile' | 'other' = 'other'
  let afterCalls = false
  for (const line of text.split('\n')) {
    const c = line.charCodeAt(0)
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42) {
      if (afterCalls) { afterCalls = false; continue }
      const n = Number(line.slice(line.indexOf(' ') + 1))
      if (!Number.isFinite(n)) continue
      cost.total += n
      if (kind === 'gc') cost.gc += n
      else if (kind === 'compile') cost.compile += n
    } else if (line.startsWith('fn=')) {
      const name = line.slice(3)
      kind = GC.test(name) ? 'gc' : COMPILE.test(name) ? 'compile' : 'other'
    } else if (line.startsWith('calls=')) {
      afterCalls = true
    }
  }
  return cost
}
