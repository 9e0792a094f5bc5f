import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cpuBudgets, throttledSeconds, type CpuBudgets } from '../../benchmarks/broker/cpu-budget.js'
import { cpuTimes } from '../../lib/bench/proc.js'

// multicore.ts --cpu-cap: a busy process put under a budget of 0.2 CPU uses about that, not a core.
describe('benchmarks: a CPU budget per process (cgroup quota)', function () {
  this.timeout(30_000)
  let child: ChildProcess | undefined
  let budgets: CpuBudgets | string | undefined

  afterEach(async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child!.once('exit', resolve))
      process.kill(child.pid, 'SIGKILL')
      await gone
    }
    if (typeof budgets === 'object') budgets.release()
  })

  it('holds a busy process to its budget, and removes its cgroups afterwards', async () => {
    budgets = cpuBudgets(`mqtt-bench-spec-${process.pid}`)
    if (typeof budgets === 'string') {
      // Only where the machine cannot give budgets (not root, no cpu controller): the reason says so.
      assert.ok(process.getuid?.() !== 0 || !existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'), budgets)
      assert.match(budgets, /cgroup/)
      return
    }
    child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })
    await new Promise((resolve) => child!.once('spawn', resolve))
    budgets.cap(child.pid!, 0.2)
    const group = `${budgets.root}/p${child.pid!}`
    const before = cpuTimes(child.pid!)!
    const started = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const after = cpuTimes(child.pid!)!
    const wall = (Date.now() - started) / 1000
    const used = after.user + after.sys - before.user - before.sys
    // 0.2 CPU over the wall time, with room for tick rounding (10 ms) and one period of burst.
    assert.ok(used <= wall * 0.2 + 0.15, `used ${used} CPU-s in ${wall} s under a 0.2 CPU budget`)
    assert.ok(used > 0.05, `it ran at all (${used} CPU-s)`)
    assert.ok((throttledSeconds(group) ?? 0) > 0, 'the quota held it back')
    assert.throws(() => (budgets as CpuBudgets).cap(child!.pid!, 0), /positive/)
    const gone = new Promise((resolve) => child!.once('exit', resolve))
    process.kill(child.pid!, 'SIGKILL')
    await gone
    // The cgroup empties once the process is reaped.
    for (let i = 0; i < 50 && existsSync(group); i++) {
      budgets.release()
      if (existsSync(group)) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.equal(existsSync(group), false)
    assert.equal(existsSync(budgets.root), false)
  })
})
