/**
 * One definition per command: the parser, `--help`, shell completion, the environment and
 * `--config` file names and docs/reference/command-line.md (checked by test/cli-help.test.ts) all read it, so they cannot drift.
 */

/** A check on one value: the problem in words ("must be a port number from 0 to 65535"), or undefined when fine. */
export type ValueCheck = (value: string) => string | undefined;

export interface FlagDefinition {
  /** `boolean` flags take no value; `string` flags take one (after a space or `=`). */
  readonly type: 'string' | 'boolean';
  /** One line of meaning, printed by `--help` and by shell completion. */
  readonly help: string;
  /** The value's name in usage (`DIR`, `N`, `30s`); default `VALUE`. */
  readonly value?: string;
  /** The default as printed (`8443`, `below the open-file limit`); absent: none. */
  readonly default?: string;
  /** May be given more than once; a list in a `--config` file. */
  readonly multiple?: boolean;
  readonly required?: boolean;
  /** Its value is never printed, logged or echoed in an error. */
  readonly secret?: boolean;
  /** Checked once at start, whichever source the value came from. */
  readonly check?: ValueCheck;
  /** What shell completion offers for the value: file names, directory names or these words. */
  readonly complete?: 'file' | 'dir' | readonly string[];
}

export type FlagDefinitions = Readonly<Record<string, FlagDefinition>>;

export interface CommandDefinition<F extends FlagDefinitions = FlagDefinitions> {
  /** As typed after `tlsfleet`: `broker`, `device enroll`, `ca sign`. */
  readonly name: string;
  /** One line: what the command does. */
  readonly summary: string;
  readonly flags: F;
  /** Also read `TLSFLEET_<FLAG>` and `--config FILE` (docs/reference/configuration.md). */
  readonly configurable?: boolean;
  /** Rules between flags, one line each (`exactly one of --device or --service`). */
  readonly notes?: readonly string[];
}

/** A command with subcommands (`ca`, `device`): each subcommand has its own definition. */
export interface CommandGroup {
  readonly name: string;
  readonly summary: string;
  readonly subcommands: readonly CommandDefinition[];
}

/** Parsed values, typed after the definitions: booleans, lists for repeatable flags, strings otherwise. */
export type FlagValues<F extends FlagDefinitions> = {
  -readonly [K in keyof F]?: F[K] extends { type: 'boolean' } ? boolean : F[K] extends { multiple: true } ? string[] : string;
};

/** `--health-port` → `TLSFLEET_HEALTH_PORT`. */
export function envName(flag: string): string {
  return `TLSFLEET_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/** Defines a command; keeps the literal flag names for typed values. */
export function defineCommand<const F extends FlagDefinitions>(def: CommandDefinition<F>): CommandDefinition<F> {
  return def;
}

/** A mistake in how a command was invoked (flag, environment or config file): exit status 2. */
export class CommandLineError extends Error {
  readonly code = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'CommandLineError';
  }
}
