import { defineCommand, type CommandDefinition, type CommandGroup } from '@tlsfleet/common';
import { DEVICE_GROUP } from '@tlsfleet/device-sdk/agent-flags';
import { BROKER } from './broker.js';
import { CA_GROUP } from './ca.js';
import { DEV } from './dev.js';
import { AUDIT, AUDIT_FLEET, INIT, REVOKE, TOKEN } from './offline-commands.js';
import { PROVISIONING } from './provisioning.js';
import { SIMULATE } from './simulate.js';

export const COMPLETION_GROUP: CommandGroup = {
  name: 'completion',
  summary: 'Prints a shell completion script made from these same definitions: source <(tlsfleet completion bash).',
  subcommands: [
    defineCommand({ name: 'completion bash', summary: 'Bash completion: source <(tlsfleet completion bash), or save it in /etc/bash_completion.d/tlsfleet.', flags: {} }),
    defineCommand({ name: 'completion zsh', summary: 'Zsh completion: source <(tlsfleet completion zsh) after compinit, or save it as _tlsfleet in your $fpath.', flags: {} }),
  ],
};

/** Every `tlsfleet` command, in the order `tlsfleet --help` lists them. */
export const COMMAND_LIST: readonly (CommandDefinition | CommandGroup)[] = [INIT, PROVISIONING, BROKER, TOKEN, REVOKE, AUDIT, AUDIT_FLEET, DEVICE_GROUP, SIMULATE, DEV, CA_GROUP, COMPLETION_GROUP];

export function isGroup(c: CommandDefinition | CommandGroup): c is CommandGroup {
  return 'subcommands' in c;
}

/** Every leaf command (`broker`, `ca sign`, `device run`, ...). */
export function leafCommands(): CommandDefinition[] {
  return COMMAND_LIST.flatMap((c) => (isGroup(c) ? [...c.subcommands] : [c]));
}

/** `ca sign` within the ca group, by its last word; undefined when there is no such subcommand. */
export function subcommandOf(group: CommandGroup, word: string | undefined): CommandDefinition | undefined {
  return group.subcommands.find((s) => s.name === `${group.name} ${word}`);
}
