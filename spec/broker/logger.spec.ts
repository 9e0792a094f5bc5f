import { expect } from 'chai'
import { clientLogger, createJsonLogger, createLogger, silentLogger } from '../../lib/broker/logger.js'

describe('logger', () => {
  it('writes lines up to its level, with fields', () => {
    const lines: string[] = []
    const log = createLogger('info', (line) => lines.push(line))
    log.debug('hidden')
    log.info('shown', { clientId: 'a', n: 2, error: new TypeError('bad'), none: undefined })
    log.error('also shown')
    expect(lines).to.have.length(2)
    expect(lines[0]).to.match(/^\S+Z INFO shown clientId=a n=2 error="TypeError: bad"$/)
    expect(lines[1]).to.match(/ERROR also shown$/)
    expect(log.enabled('info')).to.equal(true)
    expect(log.enabled('debug')).to.equal(false)
  })

  it('silentLogger writes nothing and reports every level off', () => {
    expect(silentLogger.enabled('error')).to.equal(false)
    silentLogger.error('nothing')
  })
})

describe('logger – JSON lines and client fields', () => {
  it('createJsonLogger writes one JSON object per line, with level names, ISO time and serialized errors', () => {
    const lines: string[] = []
    const log = createJsonLogger('info', (line) => lines.push(line))
    log.debug('hidden')
    log.info('shown', { clientId: 'a', n: 2, error: new TypeError('bad') })
    log.warn('plain')
    expect(lines).to.have.length(2)
    const first = JSON.parse(lines[0]!) as Record<string, unknown>
    expect(first).to.include({ level: 'info', msg: 'shown', clientId: 'a', n: 2 })
    expect(first.time).to.match(/^\d{4}-\d\d-\d\dT.*Z$/)
    expect(first.error).to.include({ type: 'TypeError', message: 'bad' })
    expect(JSON.parse(lines[1]!)).to.include({ level: 'warn', msg: 'plain' })
    expect(log.enabled('info')).to.equal(true)
    expect(log.enabled('debug')).to.equal(false)
    const silent: string[] = []
    const off = createJsonLogger('silent', (line) => silent.push(line))
    off.error('nothing')
    expect(silent).to.deep.equal([])
    expect(off.enabled('error')).to.equal(false)
  })

  it('clientLogger adds client id, tenant and listener as they are at each line; explicit fields win', () => {
    const lines: string[] = []
    const client = { clientId: '', tenant: undefined as string | undefined, listener: 'edge' }
    const log = clientLogger(createJsonLogger('info', (line) => lines.push(line)), client)
    log.info('before connect')
    client.clientId = 'dev-1'
    client.tenant = 'acme'
    log.warn('after connect', { reason: 'x' })
    log.info('override', { clientId: 'given' })
    log.debug('off')
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(parsed).to.have.length(3)
    expect(parsed[0]).to.include({ clientId: '', listener: 'edge', msg: 'before connect' })
    expect(parsed[0]).to.not.have.property('tenant')
    expect(parsed[1]).to.include({ clientId: 'dev-1', tenant: 'acme', listener: 'edge', reason: 'x', level: 'warn' })
    expect(parsed[2]).to.include({ clientId: 'given', tenant: 'acme' })
    const text: string[] = []
    clientLogger(createLogger('info', (line) => text.push(line)), client).info('closing connection')
    expect(text[0]).to.match(/INFO closing connection clientId=dev-1 tenant=acme listener=edge$/)
  })
})
