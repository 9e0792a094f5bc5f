import { expect } from 'chai'
import fc from 'fast-check'
import { TopicFilterInvalidError, TopicNameInvalidError } from '../../lib/packet/errors.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import {
  checkTopicFilter,
  checkTopicName,
  isSystemTopic,
  isValidTopicFilter,
  isValidTopicName,
  parseSharedSubscription,
  SharedSubscriptionsNotSupportedError,
  topicMatches,
  WildcardSubscriptionsNotSupportedError
} from '../../lib/packet/topic.js'

/** Reference matcher, level by level, written from the specification's text (section 4.7). */
function referenceMatch(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  let i = 0
  for (; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return i === t.length
}

/** Reference topic filter validator, split based (lengths aside). */
function referenceValidFilter(s: string): boolean {
  if (s === '' || s.includes('\u0000')) return false
  let inner = s
  if (s.startsWith('$share/')) {
    const rest = s.slice('$share/'.length)
    const k = rest.indexOf('/')
    if (k <= 0) return false
    if (/[+#]/.test(rest.slice(0, k))) return false
    inner = rest.slice(k + 1)
    if (inner === '') return false
  }
  const levels = inner.split('/')
  return levels.every((l, i) =>
    l === '#' ? i === levels.length - 1 : l === '+' || !/[+#]/.test(l)
  )
}

function referenceValidName(s: string): boolean {
  return s !== '' && !/[+#]/.test(s) && !s.includes('\u0000')
}

/** Topic levels and filter levels that exercise the corner cases: empty levels, `$`, wildcards. */
const topicLevel = fc.constantFrom('a', 'b', '', '$', '$a', 'a$', 'é')
const topicArb = fc
  .array(topicLevel, { minLength: 1, maxLength: 5 })
  .map((l) => l.join('/'))
  .filter((t) => t !== '')
const filterArb = fc
  .tuple(
    fc.array(fc.constantFrom('a', 'b', '', '$a', '+'), { minLength: 0, maxLength: 4 }),
    fc.boolean()
  )
  .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
  .filter((f) => f !== '')
const rawArb = fc.oneof(
  fc.string({ unit: fc.constantFrom('a', '/', '+', '#', '$', '\u0000', 'é'), maxLength: 8 }),
  fc
    .string({ unit: fc.constantFrom('a', '/', '+', '#', '$', '\u0000'), maxLength: 8 })
    .map((s) => '$share/' + s)
)

describe('packet/topic', () => {
  describe('checkTopicName', () => {
    for (const topic of [
      'sport/tennis/player1',
      'sport',
      '/',
      '/finance',
      'a//b',
      'a/',
      '$SYS/monitor/Clients',
      'ACCOUNTS',
      ' ',
      'ünï/cödé/€/😀'
    ]) {
      it(`accepts ${JSON.stringify(topic)}`, () => {
        expect(checkTopicName(topic)).to.equal(undefined)
        expect(isValidTopicName(topic)).to.equal(true)
      })
    }

    for (const [topic, why] of [
      ['', 'an empty topic name [MQTT-4.7.3-1]'],
      ['sport/+', 'a + wildcard [MQTT-3.3.2-2] [MQTT-4.7.1-1]'],
      ['sport/#', 'a # wildcard [MQTT-3.3.2-2] [MQTT-4.7.1-1]'],
      ['sport+', 'a + inside a level [MQTT-4.7.1-1]'],
      ['#', 'a lone # [MQTT-4.7.1-1]'],
      ['a\u0000b', 'U+0000 [MQTT-4.7.3-2]']
    ] as const) {
      it(`refuses ${why} with TopicNameInvalidError 0x90`, () => {
        const error = checkTopicName(topic)
        expect(error).to.be.instanceOf(TopicNameInvalidError)
        expect(error?.reasonCode).to.equal(ReasonCode.TopicNameInvalid)
        expect(isValidTopicName(topic)).to.equal(false)
      })
    }

    it('accepts 65,535 bytes and refuses 65,536 [MQTT-4.7.3-3]', () => {
      expect(isValidTopicName('a'.repeat(65_535))).to.equal(true)
      expect(checkTopicName('a'.repeat(65_536))).to.be.instanceOf(TopicNameInvalidError)
    })

    it('counts UTF-8 bytes, not UTF-16 code units, against the limit [MQTT-4.7.3-3]', () => {
      // é is 2 bytes, € is 3, 😀 (a surrogate pair) is 4.
      expect(isValidTopicName('é'.repeat(32_767) + 'a')).to.equal(true)
      expect(isValidTopicName('é'.repeat(32_768))).to.equal(false)
      expect(isValidTopicName('€'.repeat(21_845))).to.equal(true)
      expect(isValidTopicName('€'.repeat(21_846))).to.equal(false)
      expect(isValidTopicName('😀'.repeat(16_383) + 'abc')).to.equal(true)
      expect(isValidTopicName('😀'.repeat(16_384))).to.equal(false)
      // A lone surrogate is written as U+FFFD, 3 bytes.
      expect(isValidTopicName('\ud800'.repeat(21_845))).to.equal(true)
      expect(isValidTopicName('\ud800'.repeat(21_846))).to.equal(false)
    })

    it('agrees with a reference validator on random strings (property)', () => {
      fc.assert(
        fc.property(rawArb, (s) => {
          expect(isValidTopicName(s)).to.equal(referenceValidName(s))
          expect(checkTopicName(s) === undefined).to.equal(referenceValidName(s))
        })
      )
    })
  })

  describe('checkTopicFilter', () => {
    for (const filter of [
      'sport/tennis/player1/#',
      'sport/#',
      '#',
      '+',
      '+/tennis/#',
      'sport/+/player1',
      '+/+',
      '/+',
      '/',
      'a//b',
      '+/#',
      '$SYS/#',
      '$SYS/monitor/+',
      '$share',
      '$sharex/a',
      '$share/consumer1/sport/tennis/+',
      '$share/consumer1//finance',
      '$share/g/#',
      '$share/g/$SYS/#',
      '$share/g/+'
    ]) {
      it(`accepts ${JSON.stringify(filter)}`, () => {
        expect(checkTopicFilter(filter)).to.equal(undefined)
        expect(isValidTopicFilter(filter)).to.equal(true)
      })
    }

    for (const [filter, why] of [
      ['', 'an empty filter [MQTT-4.7.3-1]'],
      ['sport/tennis#', 'a # inside a level [MQTT-4.7.1-2]'],
      ['sport/tennis/#/ranking', 'a # that is not the last level [MQTT-4.7.1-2]'],
      ['#/a', 'a leading # with levels after it [MQTT-4.7.1-2]'],
      ['##', 'a doubled # [MQTT-4.7.1-2]'],
      ['sport+', 'a + inside a level [MQTT-4.7.1-3]'],
      ['+sport', 'a + starting a level [MQTT-4.7.1-3]'],
      ['a/++/b', 'a doubled + [MQTT-4.7.1-3]'],
      ['a/\u0000', 'U+0000 [MQTT-4.7.3-2]'],
      ['$share/', 'a shared subscription without a share name [MQTT-4.8.2-1]'],
      ['$share//a', 'an empty share name [MQTT-4.8.2-1]'],
      ['$share/group', 'a shared subscription without a filter [MQTT-4.8.2-1]'],
      ['$share/group/', 'a shared subscription with an empty filter [MQTT-4.7.3-1]'],
      ['$share/a+b/x', 'a + in the share name [MQTT-4.8.2-2]'],
      ['$share/+/x', 'a share name that is + [MQTT-4.8.2-2]'],
      ['$share/a#/x', 'a # in the share name [MQTT-4.8.2-2]'],
      ['$share/g/a/#/b', 'a shared subscription whose filter is invalid [MQTT-4.7.1-2]'],
      ['$share/g/a+', 'a shared subscription whose filter is invalid [MQTT-4.7.1-3]']
    ] as const) {
      it(`refuses ${why} with TopicFilterInvalidError 0x8F`, () => {
        const error = checkTopicFilter(filter)
        expect(error).to.be.instanceOf(TopicFilterInvalidError)
        expect(error?.reasonCode).to.equal(ReasonCode.TopicFilterInvalid)
        expect(isValidTopicFilter(filter)).to.equal(false)
      })
    }

    it('accepts 65,535 bytes and refuses 65,536 [MQTT-4.7.3-3]', () => {
      expect(isValidTopicFilter('a/'.repeat(32_766) + 'a/#')).to.equal(true)
      expect(checkTopicFilter('a/'.repeat(32_767) + 'ab')).to.be.instanceOf(TopicFilterInvalidError)
      expect(checkTopicFilter('€'.repeat(21_846))).to.be.instanceOf(TopicFilterInvalidError)
    })

    it('refuses $share/ filters with 0x9E when shared subscriptions are off', () => {
      const error = checkTopicFilter('$share/g/a', { shared: false })
      expect(error).to.be.instanceOf(SharedSubscriptionsNotSupportedError)
      expect(error).to.be.instanceOf(TopicFilterInvalidError)
      expect(error?.reasonCode).to.equal(ReasonCode.SharedSubscriptionsNotSupported)
      expect(isValidTopicFilter('$share/g/a', { shared: false })).to.equal(false)
      // Filters that merely look alike are ordinary filters.
      expect(checkTopicFilter('$share', { shared: false })).to.equal(undefined)
      expect(checkTopicFilter('$sharex/a', { shared: false })).to.equal(undefined)
      expect(checkTopicFilter('a/$share/b', { shared: false })).to.equal(undefined)
    })

    it('refuses wildcards with 0xA2 when wildcard subscriptions are off', () => {
      for (const filter of ['#', 'a/+', '+/a', 'a/#', '$share/g/a/+']) {
        const error = checkTopicFilter(filter, { wildcards: false })
        expect(error, filter).to.be.instanceOf(WildcardSubscriptionsNotSupportedError)
        expect(error?.reasonCode, filter).to.equal(ReasonCode.WildcardSubscriptionsNotSupported)
      }
      expect(checkTopicFilter('a/b', { wildcards: false })).to.equal(undefined)
      expect(checkTopicFilter('$share/g/a', { wildcards: false })).to.equal(undefined)
      // A malformed filter stays 0x8F.
      expect(checkTopicFilter('a+', { wildcards: false })?.reasonCode).to.equal(
        ReasonCode.TopicFilterInvalid
      )
    })

    it('passes error options to the error it returns', () => {
      expect(checkTopicFilter('a#', undefined, { disconnect: false })?.disconnect).to.equal(false)
      expect(checkTopicName('a#', { disconnect: false })?.disconnect).to.equal(false)
      expect(checkTopicFilter('a#')?.disconnect).to.equal(true)
    })

    it('agrees with a reference validator on random strings (property)', () => {
      fc.assert(
        fc.property(rawArb, (s) => {
          expect(isValidTopicFilter(s), JSON.stringify(s)).to.equal(referenceValidFilter(s))
          expect(checkTopicFilter(s) === undefined).to.equal(referenceValidFilter(s))
        })
      )
    })

    it('accepts every generated filter and topic name as a filter (property)', () => {
      fc.assert(
        fc.property(filterArb, topicArb, (filter, topic) => {
          expect(isValidTopicFilter(filter)).to.equal(true)
          expect(isValidTopicFilter(topic)).to.equal(true)
        })
      )
    })
  })

  describe('parseSharedSubscription', () => {
    it('splits $share/{ShareName}/{filter} [MQTT-4.8.2-1]', () => {
      expect(parseSharedSubscription('$share/consumer1/sport/tennis/+')).to.deep.equal({
        group: 'consumer1',
        filter: 'sport/tennis/+'
      })
      expect(parseSharedSubscription('$share/consumer1//finance')).to.deep.equal({
        group: 'consumer1',
        filter: '/finance'
      })
      expect(parseSharedSubscription('$share/g/#')).to.deep.equal({ group: 'g', filter: '#' })
      expect(parseSharedSubscription('$share/g/$share/h/x')).to.deep.equal({
        group: 'g',
        filter: '$share/h/x'
      })
    })

    it('returns undefined for ordinary and malformed shared filters', () => {
      for (const filter of ['sport/#', '$share', '$sharex/a/b', '$share/', '$share//a', '$share/g', '$share/g/']) {
        expect(parseSharedSubscription(filter), filter).to.equal(undefined)
      }
    })
  })

  describe('topicMatches', () => {
    const cases: [filter: string, topic: string, matches: boolean, why: string][] = [
      ['sport/tennis/player1/#', 'sport/tennis/player1', true, '# includes the parent level [MQTT-4.7.1-2]'],
      ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true, '# matches one child level'],
      ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true, '# matches many levels'],
      ['sport/tennis/player1/#', 'sport/tennis/player2', false, 'a different level'],
      ['sport/#', 'sport', true, '"sport/#" matches "sport" [MQTT-4.7.1-2]'],
      ['#', 'sport/tennis', true, '# matches every topic'],
      ['#', '/', true, '# matches empty levels'],
      ['sport/tennis/+', 'sport/tennis/player1', true, '+ matches one level'],
      ['sport/tennis/+', 'sport/tennis/player1/ranking', false, '+ matches only one level'],
      ['sport/+', 'sport', false, '"sport/+" does not match "sport"'],
      ['sport/+', 'sport/', true, '"sport/+" matches "sport/" (an empty level)'],
      ['+/+', '/finance', true, '"+/+" matches "/finance"'],
      ['/+', '/finance', true, '"/+" matches "/finance"'],
      ['+', '/finance', false, '"+" does not match "/finance"'],
      ['+', 'finance', true, '"+" matches one level'],
      ['+/#', 'a', true, '"+/#" matches one level (# includes the parent)'],
      ['a/+/#', 'a', false, '"a/+/#" needs two levels'],
      ['a/+/#', 'a/', true, '"a/+/#" matches "a/"'],
      ['a//b', 'a//b', true, 'empty levels compare like the others'],
      ['a/+/b', 'a//b', true, '+ matches an empty level in the middle'],
      ['a/', 'a', false, 'a trailing empty level is a level'],
      ['a/', 'a/', true, 'a trailing empty level matches'],
      ['a', 'a/', false, 'a topic with a trailing empty level has two levels'],
      ['a/b', 'a', false, 'the filter is longer'],
      ['a', 'a/b', false, 'the topic is longer'],
      ['ACCOUNTS', 'Accounts', false, 'matching is case-sensitive [MQTT-4.7.3-4]'],
      ['#', '$SYS/monitor/Clients', false, '# does not match a $ topic [MQTT-4.7.2-1]'],
      ['+/monitor/Clients', '$SYS/monitor/Clients', false, '+ does not match a $ level [MQTT-4.7.2-1]'],
      ['$SYS/#', '$SYS/monitor/Clients', true, '$SYS/# matches $SYS topics'],
      ['$SYS/monitor/+', '$SYS/monitor/Clients', true, 'a + after $SYS matches'],
      ['a/#', 'a/$b', true, 'the $ rule is for the first level only'],
      ['a/+', 'a/$b', true, 'the $ rule is for the first level only'],
      ['+', '$', false, 'a lone $ level is a $ topic']
    ]
    for (const [filter, topic, matches, why] of cases) {
      it(`${matches ? 'matches' : 'does not match'} ${filter} with ${topic}: ${why}`, () => {
        expect(topicMatches(filter, topic)).to.equal(matches)
        expect(referenceMatch(filter, topic)).to.equal(matches)
      })
    }

    it('agrees with the level-by-level reference on random filters and topics (property)', () => {
      fc.assert(
        fc.property(filterArb, topicArb, (filter, topic) => {
          expect(topicMatches(filter, topic), `${filter} ~ ${topic}`).to.equal(
            referenceMatch(filter, topic)
          )
        }),
        { numRuns: 2000 }
      )
    })

    it('matches a topic used as its own filter, and # matches every non-$ topic (property)', () => {
      fc.assert(
        fc.property(topicArb, (topic) => {
          expect(topicMatches(topic, topic)).to.equal(true)
          expect(topicMatches('#', topic)).to.equal(!topic.startsWith('$'))
        })
      )
    })

    it('walks a topic of 32,768 levels', () => {
      const topic = 'a/'.repeat(32_767) + 'a'
      expect(topicMatches(topic, topic)).to.equal(true)
      expect(topicMatches('+/'.repeat(32_767) + '+', topic)).to.equal(true)
      expect(topicMatches('+/'.repeat(32_767) + 'b', topic)).to.equal(false)
    })
  })

  describe('isSystemTopic', () => {
    it('is true only for $ topics', () => {
      expect(isSystemTopic('$SYS/broker/uptime')).to.equal(true)
      expect(isSystemTopic('$')).to.equal(true)
      expect(isSystemTopic('a/$SYS')).to.equal(false)
      expect(isSystemTopic('')).to.equal(false)
    })
  })
})
