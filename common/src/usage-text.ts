import { envName, type CommandDefinition, type CommandGroup, type FlagDefinition } from './command-definition.js';

function flagWithValue(name: string, f: FlagDefinition): string {
  return f.type === 'boolean' ? `--${name}` : `--${name} ${f.value ?? 'VALUE'}`;
}

/** One line: `tlsfleet broker --data-dir DIR [--host H] [--trusted-proxy CIDR]...`. */
export function synopsis(def: CommandDefinition): string {
  const parts = Object.entries(def.flags).map(([name, f]) => {
    const text = flagWithValue(name, f);
    return `${f.required ? text : `[${text}]`}${f.multiple ? '...' : ''}`;
  });
  return [`tlsfleet ${def.name}`, ...parts].join(' ');
}

/** `tlsfleet <command> --help`: every flag with its value, meaning, default, and environment name. */
export function helpText(def: CommandDefinition): string {
  const rows = Object.entries(def.flags).map(([name, f]) => {
    const facts = [
      f.required ? 'required' : undefined,
      Array.isArray(f.complete) ? `one of ${f.complete.join(', ')}` : undefined,
      f.default !== undefined ? `default: ${f.default}` : undefined,
      f.multiple ? 'repeatable' : undefined,
      f.secret ? 'secret' : undefined,
      def.configurable && name !== 'config' ? `env ${envName(name)}` : undefined,
    ].filter((x) => x !== undefined);
    return [flagWithValue(name, f), `${f.help}${facts.length ? ` (${facts.join('; ')})` : ''}`] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)));
  const lines = [`usage: tlsfleet ${def.name} [flags]`, '', def.summary, '', 'flags:'];
  for (const [left, right] of rows) lines.push(left.length > width ? `  ${left}\n  ${' '.repeat(width)}  ${right}` : `  ${left.padEnd(width)}  ${right}`);
  lines.push(`  ${'--help'.padEnd(width)}  print this help and exit`);
  if (def.notes?.length) lines.push('', ...def.notes);
  if (def.configurable) {
    lines.push(
      '',
      'Every flag may also come from the environment as TLSFLEET_<FLAG> (upper case, dashes as underscores;',
      'a repeatable flag takes a comma-separated list) or from a YAML or JSON file given with --config FILE',
      '(or TLSFLEET_CONFIG) whose keys are the long flag names. A flag wins over the environment, the',
      'environment over the file, the file over the default. Secrets come from files (the *-file flags).',
    );
  }
  return lines.join('\n') + '\n';
}

/** `tlsfleet ca --help`: the group's subcommands, one synopsis each. */
export function groupHelpText(group: CommandGroup): string {
  return [`usage: tlsfleet ${group.name} <subcommand> [flags]`, '', group.summary, '', ...group.subcommands.map((s) => `  ${synopsis(s)}`), '', `tlsfleet ${group.name} <subcommand> --help prints a subcommand's flags.`].join('\n') + '\n';
}
