import assert from 'node:assert/strict'
import { dumpCost } from '../../benchmarks/broker/callgrind-dump.js'

// instructions.ts takes V8's collector and compilers out of the per-message figure by reading
// self costs per function from callgrind's dump; a call's inclusive cost must not count twice.
describe('benchmarks: instructions per message (callgrind dump)', () => {
  it('sums self costs per function, skips inclusive call costs, and tells GC and compilers apart', () => {
    const dump = [
      'version: 1', 'creator: callgrind-3.19.0', 'pid: 1', 'cmd: node', 'part: 1', '', 'positions: line', 'events: Ir', 'summary: 1111', '',
      'ob=/usr/bin/node', 'fl=???',
      'fn=uv__io_poll',
      '0 100',
      'cfn=v8::internal::Scavenger::ScavengePage(v8::internal::MemoryChunk*)',
      'calls=2 0',
      '0 1000', // inclusive cost of the calls: not uv__io_poll's own
      '+3 10',
      'fn=v8::internal::Scavenger::ScavengePage(v8::internal::MemoryChunk*)',
      '0 600',
      'fn=v8::internal::compiler::PipelineImpl::Run()',
      '0 300',
      'fn=Builtins_LoadIC',
      '* 1',
      'fn=v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)',
      '-2 100',
      'totals: 1111', ''
    ].join('\n')
    assert.deepEqual(dumpCost(dump), { total: 1111, gc: 700, compile: 300 })
  })
})
