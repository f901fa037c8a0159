import { groupHelpText, helpText, synopsis, type CommandDefinition, type CommandGroup } from '@tlsfleet/common';
import { COMMAND_LIST, isGroup, subcommandOf } from './definitions/command-definitions.js';

/** `tlsfleet --help`: one synopsis per command, from the definitions. */
export function topUsage(): string {
  const lines = COMMAND_LIST.flatMap((c) => (isGroup(c) ? c.subcommands.map(synopsis) : [synopsis(c)]));
  return ['usage:', ...lines.map((l) => `  ${l}`), '  tlsfleet --version', '', 'tlsfleet <command> --help prints a command\'s flags, defaults and meaning.'].join('\n') + '\n';
}

/** The definition `tlsfleet name rest...` runs, or its group when no known subcommand follows. */
function definitionOf(name: string, rest: readonly string[]): CommandDefinition | CommandGroup | undefined {
  const c = COMMAND_LIST.find((x) => x.name === name);
  return c !== undefined && isGroup(c) ? (subcommandOf(c, rest[0]) ?? c) : c;
}

/** `tlsfleet <command> [sub] --help`. */
export function commandHelp(name: string, rest: readonly string[]): string {
  const d = definitionOf(name, rest);
  if (d === undefined) return topUsage();
  return isGroup(d) ? groupHelpText(d) : helpText(d);
}

/** Printed under a usage error: the command's synopsis and where to find more. */
export function usageHint(name: string, rest: readonly string[]): string {
  const d = definitionOf(name, rest);
  if (d === undefined) return topUsage();
  const lines = isGroup(d) ? d.subcommands.map(synopsis) : [synopsis(d)];
  return `usage:\n${lines.map((l) => `  ${l}`).join('\n')}\n(tlsfleet ${d.name} --help prints every flag)\n`;
}
