import { TlsfleetError } from '@tlsfleet/common';
import { DataDirError } from '@tlsfleet/provisioning';
import { UsageError } from './usage-error.js';
import { initCommand, initUsage } from './commands/init.js';
import { provisioningCommand, provisioningUsage } from './commands/provisioning.js';
import { tokenCommand, tokenUsage } from './commands/token.js';
import { revokeCommand, revokeUsage } from './commands/revoke.js';
import { devCommand, devUsage } from './commands/dev.js';

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { run: Command; usage: string }> = {
  init: { run: initCommand, usage: initUsage },
  provisioning: { run: provisioningCommand, usage: provisioningUsage },
  token: { run: tokenCommand, usage: tokenUsage },
  revoke: { run: revokeCommand, usage: revokeUsage },
  dev: { run: devCommand, usage: devUsage },
};

/** Not in this version yet; named so the command line of DESIGN.md is recognisable. */
const PLANNED = new Set(['broker', 'device', 'simulate']);

function usage(): string {
  return ['usage:', ...Object.values(COMMANDS).map((c) => `  ${c.usage}`)].join('\n') + '\n';
}

/** Runs one `tlsfleet` subcommand; returns the exit status (0 ok, 1 failed, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(PLANNED.has(name) ? `tlsfleet: "${name}" is not available in this version yet\n` : `tlsfleet: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tlsfleet ${name}: ${err.message}\nusage: ${command.usage}\n`);
      return 2;
    }
    if (err instanceof TlsfleetError || err instanceof DataDirError) {
      process.stderr.write(`tlsfleet ${name}: ${err.message}${err instanceof TlsfleetError ? ` (${err.code})` : ''}\n`);
      return 1;
    }
    process.stderr.write(`tlsfleet ${name}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
