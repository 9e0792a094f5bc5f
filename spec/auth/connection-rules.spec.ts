import { expect } from 'chai'
import { ConnectionRules, hostOf } from '../../lib/auth/connection-rules.js'
import type { ConnectionFacts } from '../../lib/auth/connection-rules.js'

function facts(extra: Partial<ConnectionFacts> & { address?: string; listener?: string; subject?: string } = {}): ConnectionFacts {
  const { address, listener, subject, ...rest } = extra
  const connection = {
    transport: 'tcp' as const,
    remoteAddress: address ?? '127.0.0.1:5000',
    listener: listener ?? 'tcp:1883',
    ...(subject === undefined
      ? {}
      : { peerCertificate: { subject, commonName: undefined, subjectAltNames: [], issuer: 'CN=ca', fingerprint256: '', authorized: true } })
  }
  return { clientId: 'c1', username: undefined, tenant: undefined, connection, ...rest }
}

describe('connection rules', () => {
  it('first match wins; the default decides otherwise', () => {
    const rules = new ConnectionRules([
      { action: 'allow', client_id: 'admin-*' },
      { action: 'deny', address: '10.0.0.0/8' },
      { action: 'allow', address: ['10.1.0.0/16'] }
    ])
    expect(rules.decide(facts({ clientId: 'admin-1', address: '10.1.2.3:1' }))).to.deep.equal({ allow: true, rule: 0 })
    expect(rules.decide(facts({ address: '10.1.2.3:1' }))).to.deep.equal({ allow: false, rule: 1 })
    expect(rules.decide(facts({ address: '192.168.1.1:1' }))).to.deep.equal({ allow: true, rule: -1 })
    expect(new ConnectionRules([], 'deny').decide(facts()).allow).to.equal(false)
  })

  it('matches user names, listeners, certificate subjects and IPv6 / mapped addresses', () => {
    const rules = new ConnectionRules(
      [
        { action: 'allow', username: 'svc-?' },
        { action: 'allow', listener: 'internal' },
        { action: 'allow', certificate_subject: '*O=Acme*' },
        { action: 'allow', address: '::1' },
        { action: 'allow', address: '192.0.2.0/24' }
      ],
      'deny'
    )
    expect(rules.decide(facts({ username: 'svc-a', address: '203.0.113.1:1' })).rule).to.equal(0)
    expect(rules.decide(facts({ username: 'svc-ab', address: '203.0.113.1:1' })).allow).to.equal(false)
    expect(rules.decide(facts({ listener: 'internal', address: '203.0.113.1:1' })).rule).to.equal(1)
    expect(rules.decide(facts({ subject: 'CN=dev,O=Acme', address: '203.0.113.1:1' })).rule).to.equal(2)
    expect(rules.decide(facts({ address: '[::1]:4000' })).rule).to.equal(3)
    expect(rules.decide(facts({ address: '::ffff:192.0.2.7' })).rule).to.equal(4)
  })

  it('refuses bad rules with a clear error', () => {
    expect(() => new ConnectionRules([{ action: 'allow', address: 'nope' }])).to.throw(TypeError, 'connection rule 1')
    expect(() => new ConnectionRules([{ action: 'allow', address: '10.0.0.0/40' }])).to.throw(TypeError, 'prefix')
    expect(() => new ConnectionRules([{ action: 'maybe' as 'allow' }])).to.throw(TypeError, 'action')
  })

  it('hostOf reads the forms of remote addresses', () => {
    expect(hostOf('127.0.0.1:5')).to.equal('127.0.0.1')
    expect(hostOf('[::1]:5')).to.equal('::1')
    expect(hostOf('::1')).to.equal('::1')
    expect(hostOf('memory')).to.equal(undefined)
  })
})
