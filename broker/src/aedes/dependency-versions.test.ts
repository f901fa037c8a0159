import { describe, expect, it } from 'vitest';
import { assertDependencyVersions, installedVersions, WRITTEN_FOR } from './dependency-versions.js';

describe('assertDependencyVersions', () => {
  it('finds the installed Aedes and mqtt-packet to be the releases the adaptations were written for', () => {
    expect(installedVersions()).toEqual(WRITTEN_FOR);
    expect(() => assertDependencyVersions()).not.toThrow();
  });

  it.each([
    ['a newer Aedes', { aedes: '1.2.1', 'mqtt-packet': WRITTEN_FOR['mqtt-packet'] }, /aedes 1\.2\.1 \(written for 1\.2\.0\)/],
    ['an Aedes 2 beta', { aedes: '2.0.0-beta.1', 'mqtt-packet': WRITTEN_FOR['mqtt-packet'] }, /aedes 2\.0\.0-beta\.1/],
    ['another mqtt-packet', { aedes: WRITTEN_FOR.aedes, 'mqtt-packet': '9.1.0' }, /mqtt-packet 9\.1\.0 \(written for 9\.0\.2\)/],
  ])('refuses to start on %s, naming what is installed and what it was written for', (_, installed, message) => {
    expect(() => assertDependencyVersions(installed)).toThrow(message);
  });
});
