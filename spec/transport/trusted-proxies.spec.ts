import { expect } from 'chai'
import { TrustedProxies, formatAddress, unmapped } from '../../lib/transport/trusted-proxies.js'

describe('transport – trusted proxies', () => {
  it('matches single addresses and CIDR ranges, IPv4 and IPv6', () => {
    const trusted = new TrustedProxies(['127.0.0.1', '10.0.0.0/8', '192.168.4.0/22', 'fd00::/8', '2001:db8::1'])
    for (const yes of ['127.0.0.1', '10.255.1.2', '192.168.7.255', 'fd12:3456::1', '2001:db8::1']) expect(trusted.trusts(yes), yes).to.equal(true)
    for (const no of ['127.0.0.2', '11.0.0.1', '192.168.8.0', 'fe80::1', '2001:db8::2']) expect(trusted.trusts(no), no).to.equal(false)
  })

  it('matches an IPv4-mapped IPv6 peer against its IPv4 entry', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8'])
    expect(trusted.trusts('::ffff:10.1.2.3')).to.equal(true)
    expect(trusted.trusts('::FFFF:11.1.2.3')).to.equal(false)
  })

  it('trusts nobody when empty, and nothing that is not an address', () => {
    expect(new TrustedProxies([]).trusts('127.0.0.1')).to.equal(false)
    expect(new TrustedProxies(['0.0.0.0/0']).trusts('not-an-ip')).to.equal(false)
    expect(new TrustedProxies(['0.0.0.0/0']).trusts(undefined)).to.equal(false)
  })

  for (const bad of ['proxy.local', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/x', '::1/129', '1.2.3.4/08a', '']) {
    it(`refuses the entry ${JSON.stringify(bad)} with a TypeError naming it`, () => {
      expect(() => new TrustedProxies([bad])).to.throw(TypeError, JSON.stringify(bad))
    })
  }

  it('formats addresses as ConnectionInfo shows them', () => {
    expect(formatAddress('127.0.0.1', 1883)).to.equal('127.0.0.1:1883')
    expect(formatAddress('::1', 1883)).to.equal('[::1]:1883')
    expect(formatAddress('::ffff:10.0.0.1', 5)).to.equal('10.0.0.1:5')
    expect(formatAddress('2001:db8::7', undefined)).to.equal('[2001:db8::7]')
    expect(formatAddress(undefined, 5)).to.equal(undefined)
    expect(unmapped('::ffff:abcd')).to.equal('::ffff:abcd')
  })
})
