import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { synopsis } from '@tlsfleet/common';
import { COMMAND_LIST, isGroup, leafCommands } from '../cli/src/definitions/command-definitions.js';
import { CLI, runCli } from './harness/cli.js';

// DESIGN.md "Operations": `tlsfleet <command> --help` prints that command's usage and exits 0;
// usage, completion and docs/reference/command-line.md come from the same definitions as the parser.
describe('tlsfleet <command> --help', () => {
  it.concurrent.each(leafCommands().map((c) => [c.name, c] as const))('tlsfleet %s --help lists every flag with its meaning and default, exit 0', async (name, def) => {
    const r = await runCli([...name.split(' '), '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`usage: tlsfleet ${name}`);
    for (const [flag, f] of Object.entries(def.flags)) {
      const line = r.stdout.split('\n').findIndex((l) => new RegExp(`^  --${flag}\\b`).test(l));
      expect(line, `--${flag} in:\n${r.stdout}`).toBeGreaterThanOrEqual(0);
      // The meaning follows on the same line or, for a long flag, the next one.
      const text = r.stdout.split('\n').slice(line, line + 2).join(' ');
      expect(text).toContain(f.help);
      if (f.default !== undefined) expect(text).toContain(`default: ${f.default}`);
    }
  });

  it('lists every command and subcommand under tlsfleet --help, and each group under tlsfleet <group> --help', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const c of leafCommands()) expect(top.stdout).toContain(`tlsfleet ${c.name} `.trimEnd());
    for (const g of COMMAND_LIST.filter(isGroup)) {
      const r = await runCli([g.name, '--help']);
      expect(r.code).toBe(0);
      for (const s of g.subcommands) expect(r.stdout).toContain(`tlsfleet ${s.name}`);
    }
  });

  it('shows the environment names of a configurable command and none for the others', async () => {
    const broker = await runCli(['broker', '--help']);
    expect(broker.stdout).toMatch(/--health-port PORT .*env TLSFLEET_HEALTH_PORT/);
    expect(broker.stdout).toMatch(/--trusted-proxy CIDR .*repeatable/);
    const token = await runCli(['token', '--help']);
    expect(token.stdout).not.toContain('TLSFLEET_');
  });
});

describe('unknown flags and commands', () => {
  it.concurrent.each([
    [['broker', '--data-dir', '/nonexistent', '--max-conections', '5'], /unknown flag --max-conections \(did you mean --max-connections\?\)/],
    [['provisioning', '--data-dir', '/nonexistent', '--helth-port', '1'], /unknown flag --helth-port/],
    [['token', '--data-dir', '/nonexistent', '--devce', 'a'], /unknown flag --devce \(did you mean --device\?\)/],
    [['ca', 'sign', '--rootcert', 'x'], /unknown flag --rootcert \(did you mean --root-cert\?\)/],
    [['device', 'enroll', '--tokenfile', 'x'], /unknown flag --tokenfile \(did you mean --token-file\?\)/],
    [['dev', '--broker-prot', '1'], /unknown flag --broker-prot \(did you mean --broker-port\?\)/],
    [['brokr'], /unknown command "brokr" \(did you mean "broker"\?\)/],
  ])('tlsfleet %j exits 2 with a suggestion', async (args, message) => {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

describe('shell completion from the same definitions', () => {
  const bash = (script: string) => spawnSync('bash', ['-c', `source <("${process.execPath}" "${CLI}" completion bash)\n${script}`], { encoding: 'utf8' });

  it('bash loads the script and completes commands, subcommands, flags and flag values', () => {
    const r = bash(
      [
        'COMP_WORDS=(tlsfleet broker --max-con); COMP_CWORD=2; _tlsfleet; echo "1:${COMPREPLY[*]}"',
        'COMP_WORDS=(tlsfleet pro); COMP_CWORD=1; _tlsfleet; echo "2:${COMPREPLY[*]}"',
        'COMP_WORDS=(tlsfleet ca untr); COMP_CWORD=2; _tlsfleet; echo "3:${COMPREPLY[*]}"',
        'COMP_WORDS=(tlsfleet device enroll --key-type ""); COMP_CWORD=4; _tlsfleet; echo "4:${COMPREPLY[*]}"',
        'COMP_WORDS=(tlsfleet broker --port ""); COMP_CWORD=3; _tlsfleet; echo "5:${COMPREPLY[*]}"',
        'COMP_WORDS=(tlsfleet provisioning --admin-token); COMP_CWORD=2; _tlsfleet; echo "6:${COMPREPLY[*]}"',
        'complete -p tlsfleet',
      ].join('\n'),
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('1:--max-connections --max-connections-per-address\n');
    expect(r.stdout).toContain('2:provisioning\n');
    expect(r.stdout).toContain('3:untrust-root\n');
    expect(r.stdout).toContain('4:P-256 P-384 RSA-2048\n');
    // A free value (a port number): nothing offered, not the flag list.
    expect(r.stdout).toContain('5:\n');
    expect(r.stdout).toContain('6:--admin-token-file\n');
    expect(r.stdout).toContain('complete -F _tlsfleet tlsfleet');
  });

  it('zsh parses the script, and its function offers the flags and values of the command being typed', () => {
    const script = spawnSync(process.execPath, [CLI, 'completion', 'zsh'], { encoding: 'utf8' });
    expect(script.status).toBe(0);
    expect(script.stdout.startsWith('#compdef tlsfleet\n')).toBe(true);
    const syntax = spawnSync('zsh', ['-n'], { input: script.stdout, encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);
    // The completion system's own functions replaced by ones that print what they were given.
    const run = (words: string[]) =>
      spawnSync('zsh', ['-f', '-c', `${script.stdout}\n_describe() { print -l -- "\${(@P)2}" }\ncompadd() { shift; print -l -- "$@" }\n_files() { print -- "_files $*" }\nwords=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _tlsfleet`], { encoding: 'utf8' });
    const flags = run(['tlsfleet', 'broker', '--max-con']);
    expect(flags.status, flags.stderr).toBe(0);
    expect(flags.stdout).toContain('--max-connections:clients connected at once\n');
    expect(flags.stdout).toContain('--trusted-proxy:');
    expect(run(['tlsfleet', 'broker', '--ws-forwarded-cert', '']).stdout).toBe('nginx\nenvoy\n');
    expect(run(['tlsfleet', 'broker', '--acl', '']).stdout).toBe('_files \n');
    expect(run(['tlsfleet', 'ca', '']).stdout).toMatch(/^sign:/m);
  });

  it('refuses a shell it does not know, exit 2', async () => {
    const r = await runCli(['completion', 'fish']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bash or zsh');
  });
});

describe('docs/reference/command-line.md', () => {
  const doc = readFileSync(new URL('../docs/reference/command-line.md', import.meta.url), 'utf8');
  const sections = referenceSections(doc);
  const groups = COMMAND_LIST.filter(isGroup).map((g) => g.name);

  it('has a section for every command and subcommand, and none for a command that does not exist', () => {
    const leaves = leafCommands().map((c) => c.name);
    for (const name of leaves) expect([...sections.keys()], `a "tlsfleet ${name}" heading`).toContain(name);
    for (const name of sections.keys()) expect([...leaves, ...groups, '--version'], `heading "tlsfleet ${name}"`).toContain(name);
  });

  it.each(leafCommands().map((c) => [c.name, c] as const))('tlsfleet %s: the synopsis, and a table with exactly the defined flags, each with its value name and default', (name, def) => {
    const section = sections.get(name);
    expect(section, `section tlsfleet ${name}`).toBeDefined();
    const block = /```\n([\s\S]*?)\n```/.exec(section!)?.[1];
    expect(block?.replace(/\s+/g, ' ').trim(), `synopsis of tlsfleet ${name}`).toBe(synopsis(def));
    const rows = flagTable(section!);
    expect(rows.map((r) => r.flag).sort(), `flags of tlsfleet ${name}`).toEqual(Object.keys(def.flags).sort());
    for (const row of rows) {
      const f = def.flags[row.flag]!;
      expect(row.value, `value name of --${row.flag}`).toBe(f.type === 'boolean' ? undefined : (f.value ?? 'VALUE'));
      expect(row.default, `default of --${row.flag}`).toBe(f.required ? 'required' : (f.default ?? (f.type === 'boolean' ? 'off' : '—')));
      expect(row.meaning.startsWith('repeatable'), `--${row.flag} says whether it is repeatable`).toBe(f.multiple === true);
    }
  });
});

/** `## tlsfleet broker` / `### tlsfleet ca sign` → the text up to the next heading of level 2 or 3. */
function referenceSections(doc: string): Map<string, string> {
  const sections = new Map<string, string>();
  const headings = [...doc.matchAll(/^#{2,3} (.+)$/gm)];
  headings.forEach((h, i) => {
    const title = h[1]!.trim();
    if (!title.startsWith('tlsfleet ')) return;
    const name = title.slice('tlsfleet '.length);
    expect(sections.has(name), `one heading for tlsfleet ${name}`).toBe(false);
    sections.set(name, doc.slice(h.index! + h[0].length, headings[i + 1]?.index ?? doc.length));
  });
  return sections;
}

interface FlagRow {
  flag: string;
  value: string | undefined;
  default: string;
  meaning: string;
}

/** The `| flag | default | meaning |` table of a section; its first cell is `--name VALUE` in backticks. */
function flagTable(section: string): FlagRow[] {
  const lines = section.split('\n');
  const header = lines.findIndex((l) => /^\| flag \| default \| meaning \|$/.test(l));
  if (header === -1) return [];
  const rows: FlagRow[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.slice(1, -1).split(' | ').map((c) => c.trim());
    expect(cells.length, line).toBe(3);
    const m = /^`--([a-z0-9-]+)(?: ([A-Z][A-Z0-9-]*))?`$/.exec(cells[0]!);
    expect(m, `first cell of ${line}`).not.toBeNull();
    rows.push({ flag: m![1]!, value: m![2], default: cells[1]!.replace(/^`(.*)`$/, '$1'), meaning: cells[2]! });
  }
  return rows;
}
