import type { RedisLink } from './redis-link.js'

/** Reads one `CONFIG GET` value (undefined when absent). */
async function configGet(link: RedisLink, name: string): Promise<string | undefined> {
  const reply = await link.sendText<string[] | Record<string, string>>(['CONFIG', 'GET', name])
  if (Array.isArray(reply)) return reply[1]
  return reply[name]
}

/**
 * Checks how the Redis server persists its data and answers a warning to show at start, or
 * undefined when acknowledged writes survive a Redis process crash (AOF with `appendfsync
 * everysec` or `always`). Uses `CONFIG GET appendonly | appendfsync | save`; when CONFIG is refused
 * (managed Redis, renamed command) falls back to `INFO persistence` (`aof_enabled`).
 */
export async function checkDurability(link: RedisLink): Promise<string | undefined> {
  let appendonly: string | undefined
  let fsync: string | undefined
  let save: string | undefined
  try {
    ;[appendonly, fsync, save] = await Promise.all([configGet(link, 'appendonly'), configGet(link, 'appendfsync'), configGet(link, 'save')])
  } catch (error) {
    let info: string
    try {
      info = await link.sendText<string>(['INFO', 'persistence'])
    } catch {
      return `Redis persistence could not be checked (CONFIG GET refused: ${error instanceof Error ? error.message : String(error)}); make sure AOF is on (appendonly yes)`
    }
    if (/^aof_enabled:1/m.test(info)) return undefined
    return 'Redis persistence: AOF is off (aof_enabled:0): a Redis crash or restart loses the sessions, offline queues and retained messages written since the last snapshot, if any; set appendonly yes'
  }
  if (appendonly === 'yes') {
    if (fsync === 'no') return 'Redis persistence: appendfsync no lets the OS decide when the AOF reaches the disk: an OS crash can lose acknowledged messages; use appendfsync everysec or always'
    return undefined
  }
  if (save === undefined || save.trim() === '') {
    return 'Redis persistence is off (appendonly no, save ""): a Redis restart loses every session, offline queue and retained message; set appendonly yes (see docs/redis-backend.md, "Durability")'
  }
  return `Redis persistence: RDB snapshots only (save "${save}"): a Redis crash loses the writes since the last snapshot, acknowledged messages included; set appendonly yes`
}
