import { checkFlagValue, CommandLineError, envName, parseCommandLine, type CommandDefinition, type FlagDefinition, type FlagDefinitions, type FlagValues } from '@tlsfleet/common';
import { readConfigFile } from './config-file.js';

type Value = string | boolean | string[];

function fromEnv(name: string, flag: FlagDefinition, raw: string): Value {
  const label = `${envName(name)}:`;
  if (flag.type === 'boolean') {
    const b = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false }[raw.toLowerCase()];
    if (b === undefined) throw new CommandLineError(`${label} takes true or false, not ${JSON.stringify(raw)}`);
    return b;
  }
  // A repeatable flag's list is comma-separated (CIDRs and names hold no commas).
  return flag.multiple ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : raw;
}

function check(flag: FlagDefinition, value: Value, label: string): void {
  if (typeof value === 'boolean') return;
  for (const v of Array.isArray(value) ? value : [value]) checkFlagValue(flag, v, label);
}

/**
 * The command's flags from the command line and, for a configurable command, from
 * `TLSFLEET_<FLAG>` and `--config FILE` (or `TLSFLEET_CONFIG`): flag, then environment, then
 * file; defaults stay with the command. Every value is checked here, once, and an error names
 * its source. Environment variables that name no flag are left alone (other programs share
 * the TLSFLEET_ prefix, e.g. TLSFLEET_LOG_LEVEL is --log-level's).
 */
export function resolveFlags<F extends FlagDefinitions>(def: CommandDefinition<F>, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): FlagValues<F> {
  const values = parseCommandLine(def, argv) as Record<string, Value | undefined>;
  if (!def.configurable) return values as FlagValues<F>;
  const configPath = (values.config as string | undefined) ?? (env.TLSFLEET_CONFIG || undefined);
  const file = configPath === undefined ? new Map() : readConfigFile(configPath, def);
  const merged: Record<string, Value | undefined> = { ...values };
  if (configPath !== undefined) merged.config = configPath;
  for (const [name, flag] of Object.entries(def.flags) as [string, FlagDefinition][]) {
    if (name === 'config' || values[name] !== undefined) continue;
    const raw = env[envName(name)];
    if (raw !== undefined && raw !== '') {
      const v = fromEnv(name, flag, raw);
      check(flag, v, `${envName(name)}:`);
      merged[name] = v;
      continue;
    }
    const entry = file.get(name);
    if (entry !== undefined) {
      check(flag, entry.value, `${entry.at}: ${name}`);
      merged[name] = entry.value;
    }
  }
  return merged as FlagValues<F>;
}
