import { describe, expect, it } from 'vitest';
import { uriHostPermitted } from './ca-constraints.js';

describe('uriHostPermitted (RFC 5280 §4.2.1.10, URI name constraints)', () => {
  const cases: [string, string, { permitted?: string[]; excluded?: string[] }, boolean][] = [
    ['a host below a permitted domain', 'host.example.com', { permitted: ['.example.com'] }, true],
    ['a host two labels below a permitted domain', 'my.host.example.com', { permitted: ['.example.com'] }, true],
    ['the domain itself, under a leading-period constraint', 'example.com', { permitted: ['.example.com'] }, false],
    ['exactly the permitted host', 'example.com', { permitted: ['example.com'] }, true],
    ['a host below a permitted host (no leading period)', 'a.example.com', { permitted: ['example.com'] }, false],
    ['a host that only ends with the same letters', 'badexample.com', { permitted: ['.example.com', 'example.com'] }, false],
    ['a host of another case', 'Example.COM', { permitted: ['example.com'] }, true],
    ['a host that no permitted subtree takes', 'other.test', { permitted: ['.example.com'] }, false],
    ['any host when only exclusions are given', 'other.test', { excluded: ['.example.com'] }, true],
    ['an excluded host, even when also permitted', 'bad.example.com', { permitted: ['.example.com'], excluded: ['bad.example.com'] }, false],
  ];
  it.each(cases)('%s: %s', (_name, host, subtrees, expected) => {
    expect(uriHostPermitted(host, { permitted: subtrees.permitted ?? [], excluded: subtrees.excluded ?? [] })).toBe(expected);
  });
});
