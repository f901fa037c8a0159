import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Acl, CERTIFICATES_TOPIC_PREFIX, DEFAULT_POLICY, parsePolicy, reachesCertificateTopics, renewedTopic, renewTopic } from './acl.js';
import type { Identity } from './identity.js';
import { topicMatchesFilter } from './topics.js';

// In-band renewal topics: each identity may publish to its own `renew` and subscribe to
// exactly its own `renewed`, whatever the policy file says, and no filter ever granted to
// anyone reaches another identity's renewal topics.

const TD = 'tlsfleet.local';
const NAMES = ['d1', 'd10', 'd2', 'svc', 'renew', 'certificates'] as const;
const identity = (kind: 'device' | 'service', name: string): Identity => ({ kind, name, trustDomain: TD });

// Policies that hand out as much as a file can, under $tlsfleet/ too.
const POLICIES = [
  DEFAULT_POLICY,
  parsePolicy({ version: 1, rules: [{ identity: '*', allow: ['publish', 'subscribe'], topics: ['#', '$tlsfleet/#'] }] }),
  parsePolicy({
    version: 1,
    rules: [
      { identity: '*', allow: ['publish', 'subscribe'], topics: ['$tlsfleet/certificates/#', '$tlsfleet/certificates/+/renewed', '$tlsfleet/certificates/+/renew', '$tlsfleet/+/+/+'] },
      { identity: 'service', allow: ['subscribe'], topics: ['$tlsfleet/certificates/{id}/#', '$tlsfleet/events/#'] },
    ],
  }),
  parsePolicy({ version: 1, rules: [] }),
];

const level = fc.constantFrom('$tlsfleet', 'certificates', 'events', 'renew', 'renewed', '+', '#', ...NAMES);
const filterArb = fc.array(level, { minLength: 1, maxLength: 5 }).map((levels) => levels.join('/'));
const kindArb = fc.constantFrom('device' as const, 'service' as const);
const nameArb = fc.constantFrom(...NAMES);
const policyArb = fc.constantFrom(...POLICIES.map((_, i) => i));

/** Every renewal topic of every name in NAMES. */
const CERTIFICATE_TOPICS = NAMES.flatMap((n) => [renewTopic(n), renewedTopic(n)]);

describe('in-band renewal topics in the ACL', () => {
  it('open exactly the own renew topic to publish and the own renewed topic to subscribe, under any policy', () => {
    for (const policy of POLICIES) {
      for (const kind of ['device', 'service'] as const) {
        const check = new Acl(policy).forIdentity(identity(kind, 'd1'));
        expect(check.canPublish('$tlsfleet/certificates/d1/renew')).toBe(true);
        expect(check.canSubscribe('$tlsfleet/certificates/d1/renewed')).toBe(true);
        expect(check.canPublish('$tlsfleet/certificates/d1/renewed')).toBe(false);
        expect(check.canSubscribe('$tlsfleet/certificates/d1/renew')).toBe(false);
        expect(check.canSubscribe('$tlsfleet/certificates/d1/#')).toBe(false);
        expect(check.canSubscribe('$tlsfleet/certificates/+/renewed')).toBe(false);
        expect(check.canSubscribe('$tlsfleet/certificates/#')).toBe(false);
        expect(check.canPublish('$tlsfleet/certificates/d2/renew')).toBe(false);
        expect(check.canPublish('$tlsfleet/certificates/d10/renew')).toBe(false);
        expect(check.canSubscribe('$tlsfleet/certificates/d10/renewed')).toBe(false);
        expect(check.canSubscribe('$share/g/$tlsfleet/certificates/d1/renewed')).toBe(false);
      }
    }
  });

  it('grant no filter that reaches a renewal topic other than the identity\'s own renewed topic', () => {
    fc.assert(
      fc.property(policyArb, kindArb, nameArb, filterArb, (p, kind, name, filter) => {
        const check = new Acl(POLICIES[p]).forIdentity(identity(kind, name));
        if (!check.canSubscribe(filter)) return;
        for (const topic of CERTIFICATE_TOPICS) {
          if (topicMatchesFilter(filter, topic)) expect(filter).toBe(renewedTopic(name));
        }
        // What the broker asks of every delivery: the topic itself as a filter.
        for (const topic of CERTIFICATE_TOPICS) {
          if (topic !== renewedTopic(name)) expect(check.canSubscribe(topic)).toBe(false);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('let no one publish under $tlsfleet/ but to the own renew topic', () => {
    const topicArb = fc.array(fc.constantFrom('$tlsfleet', 'certificates', 'events', 'renew', 'renewed', ...NAMES), { minLength: 1, maxLength: 5 }).map((l) => l.join('/'));
    fc.assert(
      fc.property(policyArb, kindArb, nameArb, topicArb, (p, kind, name, topic) => {
        const check = new Acl(POLICIES[p]).forIdentity(identity(kind, name));
        if (topic.startsWith('$tlsfleet/') && check.canPublish(topic)) expect(topic).toBe(renewTopic(name));
      }),
      { numRuns: 2000 },
    );
  });

  it('tell which filters could reach the renewal topics', () => {
    const reaching = ['$tlsfleet/#', '$tlsfleet/+/#', '$tlsfleet/certificates', '$tlsfleet/certificates/#', '$tlsfleet/+/d1/renewed', '$tlsfleet/certificates/+/renewed', `${CERTIFICATES_TOPIC_PREFIX}d1/renew`];
    const not = ['#', '+/certificates/#', '$tlsfleet', '$tlsfleet/events/#', '$SYS/certificates/#', 'tlsfleet/certificates/#', '$tlsfleet/certificatesx/#'];
    for (const f of reaching) expect(reachesCertificateTopics(f), f).toBe(true);
    for (const f of not) expect(reachesCertificateTopics(f), f).toBe(false);
  });

  it('explain the decisions for logs', () => {
    const check = new Acl(POLICIES[1]).forIdentity(identity('service', 'svc'));
    expect(check.explainPublish('$tlsfleet/certificates/svc/renew')).toBe("the identity's own renewal requests");
    expect(check.explainSubscribe('$tlsfleet/certificates/svc/renewed')).toBe("the identity's own renewal answers");
    expect(check.explainSubscribe('$tlsfleet/#')).toBe('under $tlsfleet/certificates/ only the identity\'s own $tlsfleet/certificates/svc/renewed may be subscribed');
    expect(check.explainPublish('$tlsfleet/certificates/d1/renew')).toBe("topics under $tlsfleet/ are the broker's own");
  });

  it('still let a service subscribe to presence events where its policy allows', () => {
    expect(new Acl(POLICIES[1]).forIdentity(identity('service', 'svc')).canSubscribe('$tlsfleet/events/#')).toBe(true);
    expect(new Acl(POLICIES[1]).forIdentity(identity('device', 'd1')).canSubscribe('$tlsfleet/events/#')).toBe(false);
  });
});
