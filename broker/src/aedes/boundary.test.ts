import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Only broker/src/aedes/ may touch Aedes' or mqtt-packet's internals: the rest of the broker
// uses their documented API, and reads undeclared Aedes state through aedes/client-state.ts.
// So a move to another Aedes release means checking this folder only.

const srcDir = dirname(dirname(fileURLToPath(import.meta.url)));
const aedesDir = join(srcDir, 'aedes');

/** Node's own stream and TLS-socket internals, which the connection guard and TLS failure reasons use: not Aedes'. */
const NODE_INTERNALS = new Set(['_write', '_writev', '_read', '_final', '_destroy', '_parent']);

/** The fields Aedes 1.2 keeps undeclared, which an `as` cast would reach. */
const UNDECLARED = 'clients|persistence|mq|subscriptions|duplicates|connackSent|connected|maxTopicLevels|maxInflightInbound|deliver0|deliverQoS|waitForDrain';

interface Rule {
  readonly name: string;
  /** Whether it also applies to tests and fixtures. */
  readonly inTests: boolean;
  find(code: string): string[];
}

const matches = (re: RegExp) => (code: string) => [...code.matchAll(re)].map((m) => m[0]);

const RULES: readonly Rule[] = [
  { name: 'a module inside aedes or mqtt-packet (aedes/lib/…, mqtt-packet/…)', inTests: true, find: matches(/(?:from\s+|import\(\s*|require\(\s*)'(?:aedes|mqtt-packet)\/[^']*'/g) },
  { name: 'the copy of a module Aedes loads (createRequire from Aedes)', inTests: true, find: matches(/resolve\(\s*'aedes'\s*\)/g) },
  { name: 'mqtt-packet itself (the wire module reads and writes bytes)', inTests: false, find: matches(/import\s+(?!type\b)[^;]*?from\s+'mqtt-packet'/g) },
  {
    name: 'a private field (._name)',
    inTests: true,
    find: (code) => [...code.matchAll(/\.(_[A-Za-z]\w*)/g)].filter((m) => !NODE_INTERNALS.has(m[1] as string)).map((m) => m[0]),
  },
  { name: 'the message emitter inside Aedes (.mq)', inTests: true, find: matches(/\.mq\b/g) },
  {
    name: 'an Aedes function or record replaced',
    inTests: true,
    find: matches(/\.(?:handle|preConnect|authenticate|authorizePublish|authorizeSubscribe|authorizeForward|published|deliver0|deliverQoS|waitForDrain|subscriptions|duplicates|parser|writeToStream|maxInflightInbound|persistence)\s*=(?!=)/g),
  },
  { name: 'undeclared Aedes state reached through a cast', inTests: true, find: matches(new RegExp(`\\bas\\s+(?:unknown\\s+as\\s+)?[^;]*?\\{\\s*(?:readonly\\s+)?(?:${UNDECLARED})\\??\\s*:`, 'g')) },
];

/** The code of a file without its comments, which may name internals freely. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return path === aedesDir ? [] : filesUnder(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const isTest = (file: string) => file.endsWith('.test.ts') || file.endsWith('.fixture.ts');

/** Each rule's findings in `text`, as "rule: match". */
function violations(text: string, test: boolean): string[] {
  const stripped = code(text);
  return RULES.filter((r) => r.inTests || !test).flatMap((r) => r.find(stripped).map((m) => `${r.name}: ${m}`));
}

describe('the Aedes boundary', () => {
  it('holds: no broker file outside aedes/ touches Aedes or mqtt-packet internals', () => {
    const files = filesUnder(srcDir);
    expect(files.length).toBeGreaterThan(40);
    const found = files.flatMap((file) => violations(readFileSync(file, 'utf8'), isTest(file)).map((v) => `${relative(srcDir, file)}: ${v}`));
    expect(found).toEqual([]);
  });

  // Each kind of touch the rules must catch, as it was written before aedes/ existed.
  it.each([
    ["import { x } from 'aedes/lib/handlers/publish.js';", 'a module inside aedes'],
    ["const m = require('mqtt-packet/parser');", 'a module inside aedes'],
    ["const m = createRequire(import.meta.resolve('aedes'))('mqtt-packet');", 'the copy of a module Aedes loads'],
    ["import { generate } from 'mqtt-packet';", 'mqtt-packet itself'],
    ['if (client._parsingBatch !== 0) return;', 'a private field'],
    ['conn.off(\'readable\', client._nextBatch);', 'a private field'],
    ['const matcher = (aedes as unknown as { mq: { _matcher: M } }).mq._matcher;', 'the message emitter'],
    ['aedes.handle = (conn, req) => handle(conn, req);', 'an Aedes function or record replaced'],
    ['client.deliver0 = later(client.deliver0);', 'an Aedes function or record replaced'],
    ['const c = (aedes as unknown as { clients: Record<string, Client> }).clients;', 'undeclared Aedes state'],
    ['if (!(client as Client & { connackSent: boolean }).connackSent) return;', 'undeclared Aedes state'],
  ])('catches %s', (line, rule) => {
    expect(violations(line, false).join('\n')).toContain(rule);
  });

  it('lets through what is not an Aedes internal', () => {
    for (const line of [
      "import type { Packet } from 'mqtt-packet';",
      'aedes.handle(guardConnection(socket, guard));',
      'guarded._writev = concatenatingWritev;',
      'if (a.handle === b) return;',
      '// Aedes keeps it in client._parser (lib/client.js).',
      'const n = metrics.connectedClients;',
    ]) expect(violations(line, false), line).toEqual([]);
  });
});
