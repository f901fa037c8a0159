import { describe, expect, it } from 'vitest';
import { filterCovers, filterProblem, publishTopicProblem, sharedSubscription, topicMatchesFilter } from './topics.js';

const EMOJI = '\u{1F600}'; // 4 UTF-8 bytes, a surrogate pair in JS
const E_ACUTE = '\u00e9'; // 2 UTF-8 bytes

describe('publish topic names', () => {
  it.each([
    'a',
    '/',
    'a//b',
    'devices/d1/telemetry',
    '$SYS/broker/uptime',
    '$',
    ' ',
    `devices/${EMOJI}/x`,
    'e\u0301', // not normalized [MQTT-4.7.3-4], still valid
    'a\nb', // control characters are only a SHOULD NOT [MQTT-1.5.3]
  ])('accepts %j', (topic) => {
    expect(publishTopicProblem(topic)).toBeUndefined();
  });

  it.each([
    ['65535 one-byte characters', 'a'.repeat(65_535)],
    ['32767 two-byte characters and one more byte', E_ACUTE.repeat(32_767) + 'a'],
    ['16383 four-byte emoji and three more bytes', EMOJI.repeat(16_383) + 'abc'],
  ])('accepts %s (65535 UTF-8 bytes)', (_name, topic) => {
    expect(publishTopicProblem(topic)).toBeUndefined();
  });

  it.each([
    ['65536 one-byte characters', 'a'.repeat(65_536)],
    ['32767 two-byte characters and two more bytes', E_ACUTE.repeat(32_767) + 'ab'],
    ['16384 four-byte emoji', EMOJI.repeat(16_384)],
  ])('refuses %s (over 65535 UTF-8 bytes)', (_name, topic) => {
    expect(publishTopicProblem(topic)).toMatch(/longer than 65535 UTF-8 bytes/);
  });

  it.each([
    ['', /empty/],
    ['a/+', /wildcard/],
    ['a/#', /wildcard/],
    ['a+b', /wildcard/],
    ['#', /wildcard/],
    ['a\u0000b', /U\+0000/],
    ['a/\ufffd', /U\+FFFD/],
    ['a\ud800', /surrogate/],
    ['a\udc00b', /surrogate/],
    ['\udc00\ud800', /surrogate/],
  ])('refuses %j', (topic, reason) => {
    expect(publishTopicProblem(topic)).toMatch(reason);
  });
});

describe('topic filters', () => {
  it.each(['#', '+', 'a/#', 'a/+/b', '+/+', '/#', '+/#', 'a//b', '$SYS/#', '$share/g/x', `${EMOJI}/+`, '/'])('accepts %j', (filter) => {
    expect(filterProblem(filter)).toBeUndefined();
  });

  it.each([
    ['', /empty/],
    ['a#', /"#" must be a whole level/],
    ['a/#/b', /"#" may only be the last level/],
    ['#/', /"#" may only be the last level/],
    ['a/b#', /"#" must be a whole level/],
    ['a+', /"\+" must be a whole level/],
    ['a/+b/c', /"\+" must be a whole level/],
    ['++', /"\+" must be a whole level/],
    ['a/\u0000', /U\+0000/],
    ['\ufffd/#', /U\+FFFD/],
    ['a/\ud83d', /surrogate/],
  ])('refuses %j', (filter, reason) => {
    expect(filterProblem(filter)).toMatch(reason);
  });

  it('refuses a filter longer than 65535 UTF-8 bytes', () => {
    expect(filterProblem('+/'.repeat(32_767) + '#')).toBeUndefined();
    expect(filterProblem('+/'.repeat(32_768) + '#')).toMatch(/longer than 65535 UTF-8 bytes/);
  });
});

describe('values that are not strings', () => {
  it.each([undefined, null, 42, Buffer.from('a/b'), ['a']])('are refused, not thrown on: %j', (value) => {
    const v = value as unknown as string;
    expect(publishTopicProblem(v)).toBe('not a string');
    expect(filterProblem(v)).toBe('not a string');
    expect(topicMatchesFilter('#', v)).toBe(false);
    expect(topicMatchesFilter(v, 'a')).toBe(false);
    expect(filterCovers('#', v)).toBe(false);
    expect(sharedSubscription(v)).toBeUndefined();
  });
});

describe('matching a topic against a filter', () => {
  it.each([
    // filter, topic, matches
    ['a/b', 'a/b', true],
    ['a/b', 'a/b/', false],
    ['a/b', 'a/bc', false],
    ['a/b', 'A/b', false],
    ['#', 'a', true],
    ['#', 'a/b/c', true],
    ['#', '/', true],
    ['a/#', 'a', true], // [MQTT-4.7.1-2] the parent level
    ['a/#', 'a/', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['a/#', 'ab/c', false],
    ['a/b/#', 'a', false],
    ['+', 'a', true],
    ['+', '', false], // not a valid topic
    ['+', '/', false],
    ['+/+', '/', true], // + matches an empty level
    ['/+', '/', true],
    ['+', 'a/b', false],
    ['a/+', 'a', false],
    ['a/+', 'a/', true],
    ['a/+/c', 'a//c', true],
    ['a//c', 'a//c', true],
    ['a//c', 'a/c', false],
    ['a/+/c', 'a/c', false],
    ['+/#', 'a', true],
    ['+/+/#', 'a', false],
    ['#', '$SYS/x', false], // [MQTT-4.7.2-1]
    ['+/x', '$SYS/x', false],
    ['+', '$', false],
    ['$SYS/#', '$SYS', true],
    ['$SYS/#', '$SYS/broker/uptime', true],
    ['$SYS/+', '$SYS/x', true],
    ['a/#', 'a/$x', true], // only a leading $ is special
    ['+/$x', 'a/$x', true],
    [`d/${EMOJI}`, `d/${EMOJI}`, true],
    [`d/+`, `d/${EMOJI}`, true],
    [`d/${E_ACUTE}`, 'd/e\u0301', false], // no normalization [MQTT-4.7.3-4]
    ['a/+', 'a/+', false], // a topic with wildcards is invalid and matches nothing
    ['a/b', 'a/b\u0000', false],
    ['a#', 'a#', false], // an invalid filter matches nothing
  ])('%j matches %j: %s', (filter, topic, expected) => {
    expect(topicMatchesFilter(filter, topic)).toBe(expected);
  });
});

describe('one filter covering another', () => {
  it.each([
    // outer, inner, covers
    ['#', '#', true],
    ['#', 'a', true],
    ['#', '+/#', true],
    ['+/#', '#', true], // every topic has at least one level
    ['+/+/#', '#', false],
    ['/+/#', '/#', true], // '/#' cannot match its parent: '' is no topic
    ['+/+/#', '+/#', false],
    ['#', '$SYS/#', false], // [MQTT-4.7.2-1]
    ['#', '$SYS', false],
    ['+/#', '$SYS/#', false],
    ['+/x', '$SYS/x', false],
    ['+', '$', false],
    ['$SYS/#', '$SYS/+', true],
    ['$SYS/#', '$SYS', true],
    ['$SYS/#', '#', false],
    ['$SYS/+', '+/+', false],
    ['a/#', 'a', true], // the parent level
    ['a/#', 'a/#', true],
    ['a/#', 'a/+/b/#', true],
    ['a/#', 'a//b', true],
    ['a/#', '+/b', false],
    ['a/#', 'ab/#', false],
    ['a/#', '#', false],
    ['a/b/#', 'a/#', false], // a/# also matches a and a/c
    ['a/+/#', 'a/#', false], // a/# matches a
    ['a/+/#', 'a/+/#', true],
    ['a/+/#', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/', true],
    ['a/+', 'a/+', true],
    ['a/+', 'a/#', false],
    ['a/+', 'a/+/b', false],
    ['a/+', 'a', false],
    ['a/b', 'a/+', false],
    ['a/b', 'a/b', true],
    ['a/b', 'a/b/#', false],
    ['a//b', 'a/+/b', false],
    ['a/+/b', 'a//b', true],
    ['devices/+/#', 'devices/d1/telemetry', true],
    ['devices/d1/#', 'devices/+/cmd', false],
    ['devices/d1/#', 'devices/d10/x', false],
    ['devices/d1/#', 'devices/d1', true],
    ['a#', 'a#', false], // invalid filters cover and are covered by nothing
    ['#', 'a/#/b', false],
  ])('%j covers %j: %s', (outer, inner, expected) => {
    expect(filterCovers(outer, inner)).toBe(expected);
  });

  // Exhaustive cross-check against the definition: outer covers inner iff every topic
  // inner matches is matched by outer. The literal 'b' and '$b' appear in no filter, so
  // the universe holds a witness for every non-covering pair.
  it('agrees with brute force over every small filter and topic', () => {
    const filterLevels = ['a', '$a', '', '+', '#'];
    const topicLevels = ['a', 'b', '$a', '$b', ''];
    const filters = expand(filterLevels, 3).filter((f) => filterProblem(f) === undefined);
    const topics = expand(topicLevels, 4).filter((t) => publishTopicProblem(t) === undefined);
    const matched = new Map(filters.map((f) => [f, topics.filter((t) => topicMatchesFilter(f, t))]));
    const wrong: string[] = [];
    for (const outer of filters) {
      const outerSet = new Set(matched.get(outer));
      for (const inner of filters) {
        const expected = (matched.get(inner) ?? []).every((t) => outerSet.has(t));
        if (filterCovers(outer, inner) !== expected) wrong.push(`${outer} ⊇ ${inner}: expected ${expected}`);
      }
    }
    expect(filters.length).toBeGreaterThan(80);
    expect(wrong).toEqual([]);
  });
});

describe('shared subscriptions', () => {
  it.each([
    ['$share/g/devices/d1/#', { group: 'g', filter: 'devices/d1/#', problem: undefined }],
    ['$share/g/+', { group: 'g', filter: '+', problem: undefined }],
    ['$share/g//', { group: 'g', filter: '/', problem: undefined }],
    ['$share', { group: '', filter: '', problem: 'shared subscription needs a group name' }],
    ['$share/', { group: '', filter: '', problem: 'shared subscription needs a group name' }],
    ['$share//x', { group: '', filter: 'x', problem: 'shared subscription needs a group name' }],
    ['$share/g', { group: 'g', filter: '', problem: 'shared subscription needs a topic filter' }],
    ['$share/g/', { group: 'g', filter: '', problem: 'shared subscription needs a topic filter' }],
    ['$share/+/x', { group: '+', filter: 'x', problem: 'shared subscription group name must not contain "+" or "#"' }],
    ['$share/g#/x', { group: 'g#', filter: 'x', problem: 'shared subscription group name must not contain "+" or "#"' }],
    ['$share/g/a/#/b', { group: 'g', filter: 'a/#/b', problem: 'shared subscription filter: "#" may only be the last level' }],
    ['$share/g\u0000/x', { group: 'g\u0000', filter: 'x', problem: 'shared subscription group name: contains U+0000' }],
  ])('parses %j', (filter, expected) => {
    expect(sharedSubscription(filter)).toEqual(expected);
  });

  it.each(['devices/d1/#', '$SHARE/g/x', '$shared/g/x', 'x/$share/g/x', '#', '$SYS/#'])('does not treat %j as shared', (filter) => {
    expect(sharedSubscription(filter)).toBeUndefined();
  });
});

function expand(levels: readonly string[], maxDepth: number): string[] {
  let current: string[][] = levels.map((l) => [l]);
  const all = [...current];
  for (let depth = 2; depth <= maxDepth; depth++) {
    current = current.flatMap((prefix) => levels.map((l) => [...prefix, l]));
    all.push(...current);
  }
  return all.map((parts) => parts.join('/'));
}
