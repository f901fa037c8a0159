import { readFileSync } from 'node:fs';
import { CommandLineError, didYouMean, type CommandDefinition, type FlagDefinition } from '@tlsfleet/common';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';

/** One key of a `--config` file: its value and where it is (`config.yaml:7`). */
export interface ConfigEntry {
  readonly value: string | boolean | string[];
  readonly at: string;
}

function scalarText(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  const v = node.value;
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : undefined;
}

function valueOf(flag: FlagDefinition, node: unknown, problem: (what: string) => CommandLineError): string | boolean | string[] {
  if (flag.type === 'boolean') {
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    throw problem('takes true or false');
  }
  if (flag.multiple) {
    const items = isSeq(node) ? node.items : [node];
    const texts = items.map(scalarText);
    if (texts.some((t) => t === undefined)) throw problem('takes a list of values (a YAML list)');
    return texts as string[];
  }
  const text = scalarText(node);
  if (text === undefined) throw problem(isSeq(node) ? 'takes one value, not a list' : 'takes one value');
  return text;
}

/**
 * Reads a YAML or JSON (a subset of YAML 1.2) file whose keys are the command's long flag
 * names. An unknown key, a syntax error or a value of the wrong shape is a CommandLineError
 * that names the file and line: `config.yaml:7: unknown key "max-conections" (did you mean ...)`.
 */
export function readConfigFile(path: string, def: CommandDefinition): Map<string, ConfigEntry> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CommandLineError(`--config ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => `${path}:${offset === undefined ? 1 : lines.linePos(offset).line}`;
  const syntax = doc.errors[0];
  if (syntax !== undefined) throw new CommandLineError(`${lineOf(syntax.pos[0])}: ${syntax.message.split('\n')[0]}`);
  const entries = new Map<string, ConfigEntry>();
  if (doc.contents === null) return entries;
  if (!isMap(doc.contents)) throw new CommandLineError(`${lineOf((doc.contents as Node).range?.[0])}: must be a mapping of flag names to values`);
  const names = Object.keys(def.flags).filter((n) => n !== 'config');
  for (const pair of doc.contents.items) {
    const at = lineOf((pair.key as Node | null)?.range?.[0]);
    const key = scalarText(pair.key);
    if (key === undefined || !names.includes(key)) {
      const guess = key === undefined ? undefined : didYouMean(key, names);
      throw new CommandLineError(`${at}: unknown key ${JSON.stringify(key ?? String(pair.key))}${guess === undefined ? '' : ` (did you mean ${JSON.stringify(guess)}?)`}`);
    }
    const flag = def.flags[key] as FlagDefinition;
    entries.set(key, { value: valueOf(flag, pair.value, (what) => new CommandLineError(`${at}: ${key} ${what}`)), at });
  }
  return entries;
}
