import { expect } from 'chai'
import { createLogger, silentLogger } from '../../lib/broker/logger.js'

describe('logger', () => {
  it('writes lines up to its level, with fields', () => {
    const lines: string[] = []
    const log = createLogger('info', (line) => lines.push(line))
    log.debug('hidden')
    log.info('shown', { clientId: 'a', n: 2, error: new TypeError('bad'), none: undefined })
    log.error('also shown')
    expect(lines).to.have.length(2)
    expect(lines[0]).to.match(/^\S+Z INFO shown clientId=a n=2 error=TypeError: bad$/)
    expect(lines[1]).to.match(/ERROR also shown$/)
    expect(log.enabled('info')).to.equal(true)
    expect(log.enabled('debug')).to.equal(false)
  })

  it('silentLogger writes nothing and reports every level off', () => {
    expect(silentLogger.enabled('error')).to.equal(false)
    silentLogger.error('nothing')
  })
})
