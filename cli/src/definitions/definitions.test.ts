import { describe, expect, it } from 'vitest';
import { FORWARDED_CERT_FORMATS } from '@tlsfleet/broker';
import { LOG_LEVELS } from '@tlsfleet/provisioning';
import { leafCommands } from './command-definitions.js';
import { FORWARDED_CERT_FORMAT_NAMES, LOG_LEVEL_NAMES } from './shared-flags.js';

describe('command definitions', () => {
  it('offer the same choices as the services accept', () => {
    expect([...LOG_LEVEL_NAMES]).toEqual([...LOG_LEVELS]);
    expect([...FORWARDED_CERT_FORMAT_NAMES]).toEqual([...FORWARDED_CERT_FORMATS]);
  });

  it.each(leafCommands().map((c) => [c.name, c] as const))('%s: every flag is kebab-case with one line of meaning, and every check passes its own default', (_name, def) => {
    expect(def.summary).toMatch(/^\S.*\.$/);
    for (const [name, f] of Object.entries(def.flags)) {
      expect(name).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      expect(f.help.length, name).toBeGreaterThan(5);
      expect(f.help, name).not.toContain('\n');
      // A default written as a value (a number, a duration, a choice; not prose) must pass the flag's own check.
      if (f.default !== undefined && f.check !== undefined && (/^\d\S*$/.test(f.default) || (Array.isArray(f.complete) && f.complete.includes(f.default)))) expect(f.check(f.default), `--${name} default ${f.default}`).toBeUndefined();
    }
  });
});
