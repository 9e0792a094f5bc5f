import { expect } from 'chai'
import { ClientAcl, filterCovers, filtersOverlap } from '../../lib/auth/acl.js'
import type { AclRule } from '../../lib/auth/acl.js'
import { AclFileError, parseAclFile } from '../../lib/auth/acl-file.js'

const alice = { username: 'alice', clientId: 'dev1', tenant: 'acme' }

describe('acl – filter relations', () => {
  it('overlap: some topic matches both filters', () => {
    expect(filtersOverlap('#', 'a/b')).to.equal(true)
    expect(filtersOverlap('a/+/c', 'a/b/#')).to.equal(true)
    expect(filtersOverlap('a/b', 'a/c')).to.equal(false)
    expect(filtersOverlap('a/#', 'a')).to.equal(true)
    expect(filtersOverlap('a/+', 'a')).to.equal(false)
    expect(filtersOverlap('#', '$SYS/x')).to.equal(false)
    expect(filtersOverlap('+/x', '$SYS/#')).to.equal(false)
    expect(filtersOverlap('$SYS/#', '$SYS/broker/+')).to.equal(true)
  })

  it('cover: every topic of the inner filter matches the outer one', () => {
    expect(filterCovers('secret/#', 'secret/a/+')).to.equal(true)
    expect(filterCovers('secret/#', 'secret')).to.equal(true)
    expect(filterCovers('secret/+', 'secret/#')).to.equal(false)
    expect(filterCovers('+/b', 'a/b')).to.equal(true)
    expect(filterCovers('a/b', '+/b')).to.equal(false)
    expect(filterCovers('#', '$SYS/a')).to.equal(false)
    expect(filterCovers('#', '#')).to.equal(true)
  })
})

describe('acl – decisions', () => {
  const rules: AclRule[] = [
    { filter: '#', access: 'readwrite' },
    { filter: 'secret/#', access: 'deny' },
    { filter: 'in/%u/#', access: 'write' },
    { filter: '$SYS/broker/#', access: 'read', user: 'admin' }
  ]

  it('a deny overrides a broader allow, wherever it stands', () => {
    for (const order of [rules, [...rules].reverse()]) {
      const acl = new ClientAcl(order, alice, false)
      expect(acl.mayRead('secret/x')).to.equal(false)
      expect(acl.mayWrite('secret/x')).to.equal(false)
      expect(acl.mayRead('public/x')).to.equal(true)
    }
  })

  it('a wildcard subscription over denied topics is allowed; a filter inside a deny is refused', () => {
    const acl = new ClientAcl(rules, alice, false)
    expect(acl.maySubscribe('#')).to.equal(true)
    expect(acl.maySubscribe('secret/#')).to.equal(false)
    expect(acl.maySubscribe('secret/a')).to.equal(false)
    expect(acl.maySubscribe('+/a')).to.equal(true)
  })

  it('looks through $share/{group}/ to the inner filter', () => {
    const acl = new ClientAcl(rules, alice, false)
    expect(acl.maySubscribe('$share/g/secret/#')).to.equal(false)
    expect(acl.maySubscribe('$share/g/public/#')).to.equal(true)
  })

  it('# grants nothing under $SYS: it takes a $SYS rule', () => {
    const acl = new ClientAcl(rules, alice, false)
    expect(acl.maySubscribe('$SYS/#')).to.equal(false)
    expect(acl.mayRead('$SYS/broker/uptime')).to.equal(false)
    const admin = new ClientAcl(rules, { ...alice, username: 'admin' }, false)
    expect(admin.maySubscribe('$SYS/#')).to.equal(true)
    expect(admin.mayRead('$SYS/broker/uptime')).to.equal(true)
    expect(admin.mayWrite('$SYS/broker/uptime')).to.equal(false)
  })

  it('substitutes %u %c %t; a missing value drops the rule; a wildcard value fails closed for deny', () => {
    const own: AclRule[] = [
      { filter: 'u/%u/#', access: 'readwrite' },
      { filter: 'c/%c/#', access: 'readwrite' },
      { filter: 't/%t/#', access: 'readwrite' }
    ]
    const acl = new ClientAcl(own, alice, false)
    expect(acl.mayWrite('u/alice/x')).to.equal(true)
    expect(acl.mayWrite('u/bob/x')).to.equal(false)
    expect(acl.mayWrite('c/dev1/x')).to.equal(true)
    expect(acl.mayWrite('t/acme/x')).to.equal(true)
    const anonymous = new ClientAcl(own, { username: undefined, clientId: 'dev1', tenant: undefined }, false)
    expect(anonymous.mayWrite('u/alice/x')).to.equal(false)
    expect(anonymous.mayWrite('t/acme/x')).to.equal(false)
    const sneaky = new ClientAcl(own, { username: '#', clientId: 'a/b', tenant: 'acme' }, false)
    expect(sneaky.mayWrite('u/anyone/x')).to.equal(false)
    expect(sneaky.mayWrite('c/a/b/x')).to.equal(false)
    const denied = new ClientAcl([{ filter: '#', access: 'readwrite' }, { filter: 'u/%u/#', access: 'deny' }], { ...alice, username: '+' }, false)
    expect(denied.mayRead('anything')).to.equal(false)
  })

  it('read and write are separate; the default decides when nothing grants', () => {
    const acl = new ClientAcl([{ filter: 'r/#', access: 'read' }, { filter: 'w/#', access: 'write' }], alice, false)
    expect(acl.mayRead('r/1')).to.equal(true)
    expect(acl.mayWrite('r/1')).to.equal(false)
    expect(acl.mayWrite('w/1')).to.equal(true)
    expect(acl.mayRead('w/1')).to.equal(false)
    expect(acl.mayRead('other')).to.equal(false)
    expect(new ClientAcl([{ filter: 'x', access: 'deny' }], alice, true).mayRead('other')).to.equal(true)
  })

  it('selectors: user, client, tenant', () => {
    const only: AclRule[] = [
      { filter: 'a', access: 'read', user: 'alice' },
      { filter: 'b', access: 'read', client: 'dev1' },
      { filter: 'c', access: 'read', tenant: 'other' }
    ]
    const acl = new ClientAcl(only, alice, false)
    expect([acl.mayRead('a'), acl.mayRead('b'), acl.mayRead('c')]).to.deep.equal([true, true, false])
  })
})

describe('acl – Mosquitto ACL files', () => {
  it('reads topic, pattern and user lines', () => {
    const rules = parseAclFile(
      ['# all', 'topic read public/#', 'user alice', 'topic alice/#', 'topic deny alice/secret', 'pattern write devices/%c/up'].join('\n')
    )
    expect(rules).to.deep.equal([
      { filter: 'public/#', access: 'read' },
      { filter: 'alice/#', access: 'readwrite', user: 'alice' },
      { filter: 'alice/secret', access: 'deny', user: 'alice' },
      { filter: 'devices/%c/up', access: 'write' }
    ])
  })

  it('names file and line of a bad rule', () => {
    expect(() => parseAclFile('topic read ok\ntopic read a/#/b\n', 'acl.conf')).to.throw(AclFileError, 'acl.conf:2')
    expect(() => parseAclFile('bogus\n', 'acl.conf')).to.throw(AclFileError, 'acl.conf:1')
  })
})

describe('acl – sharing', () => {
  it('connections whose rules come out alike share one ACL (and its caches); %c rules do not', async () => {
    const { AccessControl } = await import('../../lib/auth/access-control.js')
    const { FakeClient } = await import('../../lib/backend/conformance/index.js')
    const plain = new AccessControl({ acl: [{ filter: 'a/#', access: 'read' }], bruteForce: false })
    expect(plain.aclOf(new FakeClient('one'))).to.equal(plain.aclOf(new FakeClient('two')))
    const own = new AccessControl({ acl: [{ filter: 'a/%c/#', access: 'read' }], bruteForce: false })
    const [one, two] = [own.aclOf(new FakeClient('one')), own.aclOf(new FakeClient('two'))]
    expect(one).to.not.equal(two)
    expect([one.mayRead('a/one/x'), one.mayRead('a/two/x'), two.mayRead('a/two/x')]).to.deep.equal([true, false, true])
  })
})
