import { describe, expect, it } from 'vitest';
import { Acl, AclPolicyError, DEFAULT_POLICY, parsePolicy, parsePolicyText } from './acl.js';
import type { Identity } from './identity.js';

const TD = 'tlsfleet.local';
const d1: Identity = { kind: 'device', name: 'd1', trustDomain: TD };
const d10: Identity = { kind: 'device', name: 'd10', trustDomain: TD };
const svc: Identity = { kind: 'service', name: 'analytics', trustDomain: TD };
const admin: Identity = { kind: 'admin', name: 'root', trustDomain: TD };
const IDENTITIES = { d1, d10, svc, admin } as const;

type Who = keyof typeof IDENTITIES;
type Case = readonly [who: Who, action: 'pub' | 'sub', topicOrFilter: string, allowed: boolean];

describe('the default policy', () => {
  const acl = new Acl(DEFAULT_POLICY);
  const bound = {
    d1: acl.forIdentity(d1),
    d10: acl.forIdentity(d10),
    svc: acl.forIdentity(svc),
    admin: acl.forIdentity(admin),
  };

  const cases: readonly Case[] = [
    // A device publishes under its own subtree, at any depth.
    ['d1', 'pub', 'devices/d1/telemetry', true],
    ['d1', 'pub', 'devices/d1/a/b/c/d/e/f', true],
    ['d1', 'pub', 'devices/d1', true], // '#' also matches the parent level [MQTT-4.7.1-2]
    ['d1', 'pub', 'devices/d1/', true],
    ['d1', 'pub', 'devices/d1//x', true],
    ['d1', 'pub', 'devices/d1/commands/reboot', true],
    ['d1', 'pub', 'devices/d1/\u{1F600}', true],
    // ...and nowhere else.
    ['d1', 'pub', 'devices/d2/telemetry', false],
    ['d1', 'pub', 'devices/d10/telemetry', false], // prefix attack
    ['d10', 'pub', 'devices/d1/telemetry', false], // prefix attack the other way
    ['d1', 'pub', 'devices/d1x', false],
    ['d1', 'pub', 'devices/D1/telemetry', false], // topics are case-sensitive
    ['d1', 'pub', 'devices/{id}/telemetry', false], // the placeholder is never literal
    ['d1', 'pub', 'devices', false],
    ['d1', 'pub', 'devices/', false],
    ['d1', 'pub', 'devices//d1', false],
    ['d1', 'pub', '/devices/d1/x', false],
    ['d1', 'pub', 'd1', false],
    ['d1', 'pub', '$SYS/broker/uptime', false],
    ['d1', 'pub', 'devices/d1/$SYS', true], // '$' is special only in the first level
    // Invalid topic names, even inside the device's subtree.
    ['d1', 'pub', '', false],
    ['d1', 'pub', 'devices/d1/+', false],
    ['d1', 'pub', 'devices/d1/#', false],
    ['d1', 'pub', 'devices/+/x', false],
    ['d1', 'pub', 'devices/d1/a\u0000b', false],
    ['d1', 'pub', 'devices/d1/\ufffd', false],
    ['d1', 'pub', 'devices/d1/\ud800', false],
    ['d1', 'pub', `devices/d1/${'x'.repeat(65_535)}`, false],
    // A device subscribes only to filters inside its own subtree.
    ['d1', 'sub', 'devices/d1/#', true],
    ['d1', 'sub', 'devices/d1', true],
    ['d1', 'sub', 'devices/d1/commands/#', true],
    ['d1', 'sub', 'devices/d1/+', true],
    ['d1', 'sub', 'devices/d1/+/state', true],
    ['d1', 'sub', 'devices/d1//x', true],
    ['d10', 'sub', 'devices/d10/#', true],
    ['d1', 'sub', 'devices/d2/#', false],
    ['d1', 'sub', 'devices/d10/#', false],
    ['d10', 'sub', 'devices/d1/#', false],
    ['d1', 'sub', 'devices/d1x/#', false],
    ['d1', 'sub', 'devices/+/cmd', false],
    ['d1', 'sub', 'devices/+/#', false],
    ['d1', 'sub', 'devices/#', false],
    ['d1', 'sub', '#', false],
    ['d1', 'sub', '+/d1/#', false],
    ['d1', 'sub', '+/+/#', false],
    ['d1', 'sub', '+/#', false],
    ['d1', 'sub', 'devices/+', false],
    ['d1', 'sub', 'devices//#', false],
    ['d1', 'sub', 'devices/{id}/#', false],
    ['d1', 'sub', '$SYS/#', false],
    ['d1', 'sub', '$SYS/broker/uptime', false],
    ['d1', 'sub', '$share/g/devices/d1/#', false], // not supported, even for its own subtree
    ['d1', 'sub', '$share/g/#', false],
    ['d1', 'sub', '$share', false],
    // Invalid filters, even inside the device's subtree.
    ['d1', 'sub', '', false],
    ['d1', 'sub', 'devices/d1/#/x', false],
    ['d1', 'sub', 'devices/d1/x#', false],
    ['d1', 'sub', 'devices/d1/x+', false],
    ['d1', 'sub', 'devices/d1/\u0000', false],
    ['d1', 'sub', 'devices/d1/\ufffd', false],
    ['d1', 'sub', 'devices/d1/\udc00', false],
    // A service reads every device and commands them, nothing more.
    ['svc', 'sub', 'devices/+/telemetry', true],
    ['svc', 'sub', 'devices/+/#', true],
    ['svc', 'sub', 'devices/d1/#', true],
    ['svc', 'sub', 'devices/d1', true],
    ['svc', 'sub', 'devices/+', true],
    ['svc', 'sub', 'devices/+/commands/#', true],
    ['svc', 'sub', 'devices/#', false], // would also match the topic 'devices'
    ['svc', 'sub', '#', false],
    ['svc', 'sub', '+/+/#', false],
    ['svc', 'sub', '$SYS/#', false],
    ['svc', 'sub', '$share/workers/devices/+/telemetry', false],
    ['svc', 'pub', 'devices/d1/commands/reboot', true],
    ['svc', 'pub', 'devices/d1/commands', true],
    ['svc', 'pub', 'devices/d1/commands/a/b', true],
    ['svc', 'pub', 'devices//commands/x', true], // '+' matches an empty level; no device lives there
    ['svc', 'pub', 'devices/d1/telemetry', false],
    ['svc', 'pub', 'devices/d1', false],
    ['svc', 'pub', 'devices/+/commands/reboot', false],
    ['svc', 'pub', 'devices/d1/commandsx', false],
    ['svc', 'pub', 'devices/analytics/telemetry', false], // services get no {id} subtree by default
    ['svc', 'pub', '$SYS/x', false],
    // Presence events: services may watch them; no device may, and nobody may publish there.
    ['svc', 'sub', '$tlsfleet/events/#', true],
    ['svc', 'sub', '$tlsfleet/events/connected/+', true],
    ['svc', 'sub', '$tlsfleet/events/disconnected/d1', true],
    ['svc', 'sub', '$tlsfleet/#', false],
    ['svc', 'pub', '$tlsfleet/events/connected/d1', false],
    ['d1', 'sub', '$tlsfleet/events/#', false],
    ['d1', 'sub', '$tlsfleet/events/connected/d1', false],
    ['d1', 'pub', '$tlsfleet/events/connected/d1', false],
    // Admin identities have no broker access at all.
    ['admin', 'pub', 'devices/root/telemetry', false],
    ['admin', 'pub', 'devices/d1/commands/reboot', false],
    ['admin', 'sub', 'devices/root/#', false],
    ['admin', 'sub', 'devices/+/#', false],
    ['admin', 'sub', '#', false],
    ['admin', 'sub', '$SYS/#', false],
  ];

  it('has enough cases to be worth trusting', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases.map(([who, action, target, allowed]) => [who, action, printable(target), allowed, target] as const))(
    '%s %s %s: allowed %s',
    (who, action, _printed, allowed, target) => {
      const check = bound[who];
      expect(action === 'pub' ? check.canPublish(target) : check.canSubscribe(target)).toBe(allowed);
    },
  );

  it('gives one bound ACL asked again and again, in any order, the answers of a fresh binding', () => {
    const publishes = cases.filter(([, action]) => action === 'pub');
    const reused = { d1: acl.forIdentity(d1), d10: acl.forIdentity(d10), svc: acl.forIdentity(svc), admin: acl.forIdentity(admin) };
    for (const order of [publishes, [...publishes].reverse(), [...publishes, ...publishes]]) {
      for (const [who, , topic, allowed] of order) {
        expect(reused[who].canPublish(topic)).toBe(allowed);
        expect(reused[who].canPublish(topic)).toBe(acl.forIdentity(IDENTITIES[who]).canPublish(topic));
      }
    }
  });

  it('matches the default policy of docs/reference/mqtt.md', () => {
    expect(DEFAULT_POLICY).toEqual({
      version: 1,
      rules: [
        { identity: 'device', allow: ['publish', 'subscribe'], topics: ['devices/{id}/#'] },
        { identity: 'service', allow: ['subscribe'], topics: ['devices/+/#'] },
        { identity: 'service', allow: ['publish'], topics: ['devices/+/commands/#'] },
        { identity: 'service', allow: ['subscribe'], topics: ['$tlsfleet/events/#'] },
      ],
    });
  });
});

describe('the broker\'s own topics under $tlsfleet/', () => {
  // A policy file that hands everything out still cannot open them to devices or publishers.
  const generous = new Acl(parsePolicy({
    version: 1,
    rules: [{ identity: '*', allow: ['publish', 'subscribe'], topics: ['$tlsfleet/#', 'devices/{id}/#'] }],
  }));

  it.each([
    ['a device subscribing', () => generous.forIdentity(d1).canSubscribe('$tlsfleet/events/#')],
    ['a device subscribing to its own events', () => generous.forIdentity(d1).canSubscribe('$tlsfleet/events/connected/d1')],
    ['a device publishing', () => generous.forIdentity(d1).canPublish('$tlsfleet/events/connected/d1')],
    ['a service publishing', () => generous.forIdentity(svc).canPublish('$tlsfleet/events/disconnected/d1')],
  ])('stay closed to %s, whatever the policy says', (_who, allowed) => {
    expect(allowed()).toBe(false);
  });

  it('stay open to services the policy lets subscribe', () => {
    expect(generous.forIdentity(svc).canSubscribe('$tlsfleet/events/#')).toBe(true);
  });

  it('say why in the explanations', () => {
    expect(generous.forIdentity(d1).explainSubscribe('$tlsfleet/events/#')).toBe('devices may not subscribe under $tlsfleet/');
    expect(generous.forIdentity(svc).explainPublish('$tlsfleet/events/connected/d1')).toBe("topics under $tlsfleet/ are the broker's own");
  });
});

describe('packets with a topic that is not a string', () => {
  const check = new Acl(DEFAULT_POLICY).forIdentity(d1);

  it.each([undefined, null, 7, Buffer.from('devices/d1/x')])('are refused, not thrown on: %j', (value) => {
    const v = value as unknown as string;
    expect(check.canPublish(v)).toBe(false);
    expect(check.canSubscribe(v)).toBe(false);
    expect(check.explainPublish(v)).toBe('invalid topic: not a string');
    expect(check.explainSubscribe(v)).toBe('invalid filter: not a string');
  });
});

describe('identities the ACL cannot bind', () => {
  const acl = new Acl(parsePolicy({ version: 1, rules: [{ identity: '*', allow: ['publish', 'subscribe'], topics: ['#'] }] }));

  it.each([
    ['an admin', admin],
    ['a device whose name is no valid id', { kind: 'device', name: 'a/+', trustDomain: TD }],
    ['a device with an empty name', { kind: 'device', name: '', trustDomain: TD }],
    ['an unknown kind', { kind: 'robot', name: 'r1', trustDomain: TD }],
  ] as const)('denies %s everything, even under a "#" rule', (_label, identity) => {
    const check = acl.forIdentity(identity as Identity);
    expect(check.canPublish('a')).toBe(false);
    expect(check.canSubscribe('a')).toBe(false);
  });

  it('still keeps "$" topics out of a "#" rule for others', () => {
    const check = acl.forIdentity(d1);
    expect(check.canSubscribe('#')).toBe(true);
    expect(check.canSubscribe('$SYS/#')).toBe(false);
    expect(check.canPublish('$SYS/x')).toBe(false);
  });
});

describe('a custom policy with identity "*"', () => {
  const acl = new Acl(
    parsePolicy({
      version: 1,
      rules: [
        { name: 'status', identity: '*', allow: ['publish'], topics: ['status/{id}'] },
        { name: 'broadcast', identity: '*', allow: ['subscribe'], topics: ['broadcast/#', 'inbox/{id}/+'] },
        { name: 'sys', identity: 'service', allow: ['subscribe'], topics: ['$SYS/#'] },
        { identity: 'device', allow: ['publish'], topics: ['{id}/{id}/+'] },
      ],
    }),
  );

  it.each([
    ['d1', 'pub', 'status/d1', true],
    ['d1', 'pub', 'status/d10', false],
    ['d1', 'pub', 'status/d1/x', false],
    ['svc', 'pub', 'status/analytics', true],
    ['svc', 'pub', 'status/d1', false],
    ['admin', 'pub', 'status/root', false],
    ['d1', 'sub', 'broadcast/#', true],
    ['svc', 'sub', 'broadcast/+/x', true],
    ['admin', 'sub', 'broadcast/#', false],
    ['d1', 'sub', 'inbox/d1/+', true],
    ['d1', 'sub', 'inbox/d1/#', false],
    ['d1', 'sub', 'inbox/+/x', false],
    ['d1', 'pub', 'broadcast/x', false],
    ['svc', 'sub', '$SYS/#', true],
    ['svc', 'sub', '$SYS/+/uptime', true],
    ['d1', 'sub', '$SYS/#', false],
    ['d1', 'pub', 'd1/d1/x', true],
    ['d1', 'pub', 'd1/d10/x', false],
    ['svc', 'pub', 'analytics/analytics/x', false],
  ] as const satisfies readonly Case[])('%s %s %s: allowed %s', (who, action, target, allowed) => {
    const check = acl.forIdentity(IDENTITIES[who]);
    expect(action === 'pub' ? check.canPublish(target) : check.canSubscribe(target)).toBe(allowed);
  });
});

describe('explaining a decision', () => {
  const acl = new Acl(DEFAULT_POLICY);

  it.each([
    ['d1', 'sub', 'devices/d1/#', 'allowed by rules[0] ("devices/{id}/#")'],
    ['d1', 'sub', 'devices/+/cmd', 'no rule covers it'],
    ['d1', 'sub', 'devices/d1/#/x', 'invalid filter: "#" may only be the last level'],
    ['d1', 'sub', '$share/g/devices/d1/#', 'shared subscriptions are not supported (inner filter: allowed by rules[0] ("devices/{id}/#"))'],
    ['d1', 'sub', '$share/g/devices/d2/#', 'shared subscriptions are not supported (inner filter: no rule covers it)'],
    ['d1', 'sub', '$share/g/a/#/b', 'shared subscriptions are not supported (shared subscription filter: "#" may only be the last level)'],
    ['d1', 'sub', '$share//x', 'shared subscriptions are not supported (shared subscription needs a group name)'],
    ['d1', 'pub', 'devices/d1/x', 'allowed by rules[0] ("devices/{id}/#")'],
    ['d1', 'pub', 'devices/d2/x', 'no rule allows it'],
    ['d1', 'pub', 'devices/+/x', 'invalid topic: wildcards "+" and "#" are not allowed in a topic name'],
    ['svc', 'pub', 'devices/d1/commands/x', 'allowed by rules[2] ("devices/+/commands/#")'],
    ['admin', 'pub', 'devices/root/x', 'admin identities have no broker access'],
    ['admin', 'sub', 'devices/root/#', 'admin identities have no broker access'],
  ] as const)('%s %s %s: %s', (who, action, target, reason) => {
    const check = acl.forIdentity(IDENTITIES[who]);
    expect(action === 'pub' ? check.explainPublish(target) : check.explainSubscribe(target)).toBe(reason);
  });

  it('names a rule by its name when it has one', () => {
    const named = new Acl(parsePolicy({ version: 1, rules: [{ name: 'own', identity: 'device', allow: ['publish'], topics: ['x/{id}'] }] }));
    expect(named.forIdentity(d1).explainPublish('x/d1')).toBe('allowed by rules[0] "own" ("x/{id}")');
  });
});

describe('parsing a policy', () => {
  const rule = { identity: 'device', allow: ['publish'], topics: ['devices/{id}/#'] };
  const withRule = (patch: Record<string, unknown>) => ({ version: 1, rules: [rule, rule, { ...rule, ...patch }] });

  it.each([
    ['null', null, 'policy: must be an object'],
    ['an array', [], 'policy: must be an object'],
    ['no version', { rules: [] }, 'version: must be 1'],
    ['version 2', { version: 2, rules: [] }, 'version: must be 1'],
    ['version "1"', { version: '1', rules: [] }, 'version: must be 1'],
    ['an unknown top-level key', { version: 1, rules: [], rule: [] }, 'rule: unknown key'],
    ['no rules', { version: 1 }, 'rules: must be an array'],
    ['a rule that is no object', { version: 1, rules: ['x'] }, 'rules[0]: must be an object'],
    ['an unknown rule key', withRule({ topic: 'x' }), 'rules[2].topic: unknown key'],
    ['an admin rule', withRule({ identity: 'admin' }), 'rules[2].identity: must be "device", "service" or "*"'],
    ['a missing identity', withRule({ identity: undefined }), 'rules[2].identity: must be "device", "service" or "*"'],
    ['an empty allow', withRule({ allow: [] }), 'rules[2].allow: must not be empty'],
    ['allow as a string', withRule({ allow: 'publish' }), 'rules[2].allow: must be an array'],
    ['an unknown action', withRule({ allow: ['publish', 'read'] }), 'rules[2].allow[1]: must be "publish" or "subscribe"'],
    ['a repeated action', withRule({ allow: ['publish', 'publish'] }), 'rules[2].allow[1]: repeats "publish"'],
    ['no topics', withRule({ topics: [] }), 'rules[2].topics: must not be empty'],
    ['a topic that is no string', withRule({ topics: [7] }), 'rules[2].topics[0]: must be a string'],
    ['"#" not last', withRule({ topics: ['a/#/b'] }), 'rules[2].topics[0]: "#" may only be the last level'],
    ['"+" inside a level', withRule({ topics: ['ok/#', 'a+/b'] }), 'rules[2].topics[1]: "+" must be a whole level'],
    ['an empty topic', withRule({ topics: [''] }), 'rules[2].topics[0]: empty filter'],
    ['a NUL in a topic', withRule({ topics: ['a\u0000'] }), 'rules[2].topics[0]: contains U+0000'],
    ['a lone surrogate in a topic', withRule({ topics: ['a/\ud800'] }), 'rules[2].topics[0]: contains a lone surrogate'],
    ['{id} inside a level', withRule({ topics: ['devices/x{id}/#'] }), 'rules[2].topics[0]: "{id}" must be a whole level'],
    ['an unknown placeholder', withRule({ topics: ['devices/{name}/#'] }), 'rules[2].topics[0]: "{" and "}" may only appear as the whole level "{id}"'],
    ['a shared-subscription rule', withRule({ topics: ['$share/g/#'] }), 'rules[2].topics[0]: "$share" filters cannot be used in rules'],
    ['an empty name', withRule({ name: '' }), 'rules[2].name: must be a non-empty string of at most 128 printable characters'],
    ['a name with a newline', withRule({ name: 'a\nb' }), 'rules[2].name: must be a non-empty string of at most 128 printable characters'],
  ])('refuses %s and names the path', (_label, input, message) => {
    expect(() => parsePolicy(input)).toThrow(AclPolicyError);
    expect(() => parsePolicy(input)).toThrow(message);
  });

  it('carries a stable code and the path', () => {
    const error = catchError(() => parsePolicy(withRule({ topics: ['a/#/b'] })));
    expect(error).toBeInstanceOf(AclPolicyError);
    expect(error).toMatchObject({ code: 'acl_policy', path: 'rules[2].topics[0]', message: 'rules[2].topics[0]: "#" may only be the last level' });
  });

  it('refuses "__proto__" smuggled in through JSON', () => {
    expect(() => parsePolicyText('{"version":1,"rules":[],"__proto__":{"x":1}}')).toThrow('__proto__: unknown key');
  });

  it('reads only own properties, so inherited fields count as missing', () => {
    const inherited = Object.assign(Object.create({ rules: [] }) as object, { version: 1 });
    expect(() => parsePolicy(inherited)).toThrow('rules: must be an array');
  });

  it('treats holes in a hand-built array as missing values', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(() => parsePolicy(withRule({ topics: ['a', , 'b'] }))).toThrow('rules[2].topics[1]: must be a string');
  });

  it('reports text that is not JSON', () => {
    expect(() => parsePolicyText('{"version":1,')).toThrow(/^policy: not valid JSON/);
  });

  it('returns a frozen copy that later edits to the input cannot reach', () => {
    const input = { version: 1, rules: [{ identity: 'device', allow: ['subscribe'], topics: ['a/{id}'] }] };
    const policy = parsePolicy(input);
    input.rules[0]!.topics.push('#');
    input.rules[0]!.allow.push('publish');
    expect(policy.rules[0]).toEqual({ identity: 'device', allow: ['subscribe'], topics: ['a/{id}'] });
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.rules)).toBe(true);
    expect(Object.isFrozen(policy.rules[0])).toBe(true);
    expect(Object.isFrozen(policy.rules[0]!.topics)).toBe(true);
    expect(Object.isFrozen(DEFAULT_POLICY.rules[0]!.allow)).toBe(true);
  });

  it('accepts a policy with no rules, which denies everything', () => {
    const check = new Acl(parsePolicy({ version: 1, rules: [] })).forIdentity(d1);
    expect(check.canPublish('devices/d1/x')).toBe(false);
    expect(check.explainPublish('devices/d1/x')).toBe('no rule allows it');
  });

  it('validates a policy built in code before using it', () => {
    const bad = { version: 1, rules: [{ identity: 'device', allow: ['publish'], topics: ['a/#/b'] }] } as never;
    expect(() => new Acl(bad)).toThrow('rules[0].topics[0]: "#" may only be the last level');
  });
});

function printable(text: string): string {
  const escaped = JSON.stringify(text);
  return escaped.length > 60 ? `${escaped.slice(0, 40)}…(${text.length} chars)` : escaped;
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}
