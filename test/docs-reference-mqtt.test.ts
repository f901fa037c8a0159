import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Acl, DEFAULT_POLICY, type AclPolicy, type IdentityKind } from '@tlsfleet/common';
import { RUN_DEFINITION } from '@tlsfleet/device-sdk/agent-flags';
import { loadPolicyFile } from '../broker/src/acl/policy-file.js';
import { BROKER } from '../cli/src/definitions/broker.js';
import { PROVISIONING } from '../cli/src/definitions/provisioning.js';
import { recipe } from './harness/readme.js';
import { tempDir } from './harness/temp-dir.js';

// docs/reference/mqtt.md: its ACL examples are read by the broker's own policy loader, and its
// table of decisions is what the ACL code decides.
const doc = readFileSync(new URL('../docs/reference/mqtt.md', import.meta.url), 'utf8');
const tmp = tempDir('tlsfleet-docs-mqtt-');
afterAll(() => tmp.cleanup());
let files = 0;

/** The policy as the broker loads `--acl FILE`; errors name the file `acl.json`, as the doc quotes them. */
function loadAcl(text: string): AclPolicy {
  const dir = join(tmp.path, String(files++));
  mkdirSync(dir);
  const path = join(dir, 'acl.json');
  writeFileSync(path, text);
  try {
    return loadPolicyFile(path);
  } catch (err) {
    throw new Error((err as Error).message.replace(path, 'acl.json'));
  }
}

interface Decision {
  kind: IdentityKind;
  name: string;
  action: 'publish' | 'subscribe';
  topic: string;
  allowed: boolean;
}

/** The `| identity | action | topic or filter | answer |` table. */
function decisions(): Decision[] {
  const lines = doc.split('\n');
  const header = lines.indexOf('| identity | action | topic or filter | answer |');
  expect(header).toBeGreaterThan(0);
  const rows: Decision[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const [identity, action, topic, answer] = line.slice(1, -1).split(' | ').map((c) => c.trim()) as [string, string, string, string];
    const who = /^(device|service) `([^`]+)`$/.exec(identity);
    expect(who, line).not.toBeNull();
    expect(['publish', 'subscribe'], line).toContain(action);
    expect(answer, line).toMatch(/^(allowed|refused)\b/);
    rows.push({ kind: who![1] as IdentityKind, name: who![2]!, action: action as Decision['action'], topic: topic.replace(/^`(.*)`$/, '$1'), allowed: answer.startsWith('allowed') });
  }
  return rows;
}

describe('docs/reference/mqtt.md ACL examples', () => {
  it('shows the default policy the broker applies without --acl', () => {
    expect(loadAcl(recipe('mqtt-acl-default'))).toEqual(DEFAULT_POLICY);
  });

  it('has an example the broker loads, and refuses once a key is misspelled', () => {
    const text = recipe('mqtt-acl-example');
    expect(loadAcl(text).rules.length).toBeGreaterThanOrEqual(5);
    const misspelled = text.replace('"topics"', '"topic"');
    expect(misspelled).not.toBe(text);
    expect(() => loadAcl(misspelled)).toThrow('acl.json: rules[0].topic: unknown key (expected name, identity, allow, topics)');
  });

  it('quotes the loader\'s own message for a misplaced "#"', () => {
    const quoted = 'acl.json: rules[2].topics[0]: "#" may only be the last level';
    expect(doc.replace(/\s+/g, ' ')).toContain(quoted);
    const policy = JSON.parse(recipe('mqtt-acl-example')) as { rules: { topics: string[] }[] };
    policy.rules[2]!.topics[0] = 'devices/#/x';
    expect(() => loadAcl(JSON.stringify(policy))).toThrow(quoted);
  });

  it('decides every row of its table as the broker\'s ACL does', () => {
    const acl = new Acl(loadAcl(recipe('mqtt-acl-example')));
    const rows = decisions();
    expect(rows.length).toBeGreaterThanOrEqual(10);
    expect(rows.some((r) => r.allowed) && rows.some((r) => !r.allowed)).toBe(true);
    for (const r of rows) {
      const checks = acl.forIdentity({ kind: r.kind, name: r.name, trustDomain: 'tlsfleet.local' });
      const answer = r.action === 'publish' ? checks.canPublish(r.topic) : checks.canSubscribe(r.topic);
      expect(answer, `${r.kind} ${r.name} ${r.action} ${r.topic}`).toBe(r.allowed);
    }
  });

  it('names only flags the broker, the reference agent or provisioning (its renewal relay) has', () => {
    const known = new Set([...Object.keys(BROKER.flags), ...Object.keys(RUN_DEFINITION.flags), ...Object.keys(PROVISIONING.flags)]);
    const named = [...doc.matchAll(/`--([a-z0-9-]+)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(8);
    for (const flag of named) expect(known, `--${flag}`).toContain(flag);
  });
});
