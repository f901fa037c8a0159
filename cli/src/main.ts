import { CommandLineError, didYouMean, TlsfleetError, VERSION } from '@tlsfleet/common';
import { commandHelp, topUsage, usageHint } from './help.js';

type Command = (argv: string[]) => Promise<number>;

// Loaded on use: `tlsfleet --help` and usage errors stay fast, and each command loads only
// the packages it needs.
const COMMANDS: Record<string, () => Promise<Command>> = {
  init: async () => (await import('./commands/init.js')).initCommand,
  provisioning: async () => (await import('./commands/provisioning.js')).provisioningCommand,
  broker: async () => (await import('./commands/broker.js')).brokerCommand,
  token: async () => (await import('./commands/token.js')).tokenCommand,
  revoke: async () => (await import('./commands/revoke.js')).revokeCommand,
  audit: async () => (await import('./commands/audit.js')).auditCommand,
  'audit-fleet': async () => (await import('./commands/audit-fleet.js')).auditFleetCommand,
  dev: async () => (await import('./commands/dev.js')).devCommand,
  device: async () => (await import('./commands/device.js')).deviceCommand,
  simulate: async () => (await import('./commands/simulate.js')).simulateCommand,
  ca: async () => (await import('./commands/ca.js')).caCommand,
  completion: async () => (await import('./commands/completion.js')).completionCommand,
};

function isCommand(name: string): boolean {
  return Object.hasOwn(COMMANDS, name);
}

/** Runs one `tlsfleet` subcommand; returns the exit status (0 ok, 1 failed, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    process.stdout.write(`tlsfleet ${VERSION}\n`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topUsage());
    return name === undefined ? 2 : 0;
  }
  if (!isCommand(name)) {
    const guess = didYouMean(name, Object.keys(COMMANDS));
    process.stderr.write(`tlsfleet: unknown command "${name}"${guess === undefined ? '' : ` (did you mean "${guess}"?)`}\n${topUsage()}`);
    return 2;
  }
  // docs/reference/command-line.md: `tlsfleet <command> --help` (and `tlsfleet device enroll --help`) prints that command's usage and exits 0.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandHelp(name, rest));
    return 0;
  }
  try {
    return await (await COMMANDS[name]!())(rest);
  } catch (err) {
    // Flags, TLSFLEET_* variables and --config files alike: exit 2, the message names the source.
    if (err instanceof CommandLineError) {
      process.stderr.write(`tlsfleet ${name}: ${err.message}\n${usageHint(name, rest)}`);
      return 2;
    }
    if (err instanceof TlsfleetError) {
      process.stderr.write(`tlsfleet ${name}: ${err.message} (${err.code})\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      const reason = { EADDRINUSE: 'the address is already in use (is another tlsfleet running?)', EACCES: 'permission denied', EADDRNOTAVAIL: 'no such local address' }[e.code];
      process.stderr.write(`tlsfleet ${name}: cannot listen on ${e.address ?? '?'}:${e.port ?? '?'}: ${reason}\n`);
      return 1;
    }
    // Configuration problems (DataDirError and the like) carry a message meant for people.
    if ((err as { code?: unknown }).code === 'data_dir') {
      process.stderr.write(`tlsfleet ${name}: ${(err as Error).message}\n`);
      return 1;
    }
    // A refused rotation step or a bad ACL file: the message says why and what to do, the code is stable.
    if ((err as Error).name === 'CaRotationError' || (err as Error).name === 'AclPolicyFileError') {
      process.stderr.write(`tlsfleet ${name}: ${(err as Error).message} (${(err as { code: string }).code})\n`);
      return 1;
    }
    process.stderr.write(`tlsfleet ${name}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
