import { parseArgs } from 'node:util';
import { CommandLineError, type CommandDefinition, type FlagDefinition, type FlagDefinitions, type FlagValues } from './command-definition.js';
import { didYouMean } from './did-you-mean.js';

/** `--flag`, with the closest known flag when it is a typo: exit 2's message. */
function unknownFlag(def: CommandDefinition, typed: string): CommandLineError {
  const guess = didYouMean(typed, Object.keys(def.flags));
  return new CommandLineError(`unknown flag --${typed}${guess === undefined ? '' : ` (did you mean --${guess}?)`}`);
}

/**
 * Throws a CommandLineError starting with `label` (`--port`, `TLSFLEET_PORT:`, `config.yaml:7: port`)
 * when the value fails the flag's check; a secret's value is never echoed.
 */
export function checkFlagValue(flag: FlagDefinition, value: string, label: string): void {
  const problem = flag.check?.(value);
  if (problem === undefined) return;
  throw new CommandLineError(`${label} ${problem}${flag.secret ? '' : `, not ${JSON.stringify(value)}`}`);
}

/** Every `--name` given before `--`, each known to the definition, else a did-you-mean error. */
function checkNames(def: CommandDefinition, argv: readonly string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') return;
    if (!arg.startsWith('-') || arg === '-') continue;
    if (!arg.startsWith('--')) throw new CommandLineError(`unknown flag ${arg} (flags are long: --name)`);
    const name = arg.slice(2).split('=')[0] as string;
    const flag = def.flags[name];
    if (flag === undefined) throw unknownFlag(def, name);
    // Skip the value of `--name value`, which may itself start with a dash.
    if (flag.type === 'string' && !arg.includes('=')) i++;
  }
}

/**
 * The command line parsed after the definition (node:util parseArgs underneath): an unknown
 * flag exits 2 with the nearest known one, a value that fails its check exits 2 naming the flag.
 */
export function parseCommandLine<F extends FlagDefinitions>(def: CommandDefinition<F>, argv: readonly string[]): FlagValues<F> {
  checkNames(def, argv);
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    const options = Object.fromEntries(Object.entries(def.flags).map(([n, f]) => [n, { type: f.type, multiple: f.multiple === true }]));
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new CommandLineError((err as Error).message);
  }
  for (const [name, value] of Object.entries(values)) {
    const flag = def.flags[name] as FlagDefinition;
    for (const v of Array.isArray(value) ? value : [value]) if (typeof v === 'string') checkFlagValue(flag, v, `--${name}`);
  }
  return values as FlagValues<F>;
}
