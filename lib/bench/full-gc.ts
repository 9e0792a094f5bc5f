/**
 * A full garbage collection of the calling thread's heap, on demand, without `--expose-gc` on the
 * command line: the generator runs one right before a latency measurement starts, so that what is
 * left of its own start-up, warm-up or previous repetition (incremental marking, a mark-compact
 * due) is collected before, not during, the messages it times. Without it the first measured
 * repetition caught the generator's mark-compacts (1.4–5.6 ms) every time, whichever broker ran then.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

let gc: (() => void) | undefined

/** Collects the whole heap of this thread now (a few ms; call it outside any measured interval). */
export function fullGc (): void {
  if (gc === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc
    if (exposed !== undefined) {
      gc = exposed
    } else {
      // The flag makes contexts created from now on carry `gc`; the new context hands it over.
      setFlagsFromString('--expose-gc')
      gc = runInNewContext('gc') as () => void
    }
  }
  gc()
}
