import { describe, expect, it } from 'vitest';
import { assertDependencyVersions, installedVersions, WRITTEN_FOR } from './dependency-versions.js';

describe('assertDependencyVersions', () => {
  it('finds the installed Aedes, mqtt-packet, aedes-persistence, qlobber and mqemitter-redis to be the releases the adaptations were written for', () => {
    expect(installedVersions()).toEqual(WRITTEN_FOR);
    expect(() => assertDependencyVersions()).not.toThrow();
  });

  it.each([
    ['a newer Aedes', { ...WRITTEN_FOR, aedes: '1.2.1' }, /aedes 1\.2\.1 \(written for 1\.2\.0\)/],
    ['an Aedes 2 beta', { ...WRITTEN_FOR, aedes: '2.0.0-beta.1' }, /aedes 2\.0\.0-beta\.1/],
    ['another mqtt-packet', { ...WRITTEN_FOR, 'mqtt-packet': '9.1.0' }, /mqtt-packet 9\.1\.0 \(written for 9\.0\.2\)/],
    ['another aedes-persistence', { ...WRITTEN_FOR, 'aedes-persistence': '11.1.0' }, /aedes-persistence 11\.1\.0 \(written for 11\.0\.0\)/],
    ['another qlobber', { ...WRITTEN_FOR, qlobber: '8.1.0' }, /qlobber 8\.1\.0 \(written for 8\.0\.1\)/],
    ['another mqemitter-redis', { ...WRITTEN_FOR, 'mqemitter-redis': '7.3.0' }, /mqemitter-redis 7\.3\.0 \(written for 7\.2\.1\)/],
  ])('refuses to start on %s, naming what is installed and what it was written for', (_, installed, message) => {
    expect(() => assertDependencyVersions(installed)).toThrow(message);
  });
});
