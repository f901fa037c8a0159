import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CaRotationError } from './ca-rotation-error.js';

/** The CaRotationError code a step refused with, or 'ok'; anything else is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof CaRotationError) return err.code;
    throw err;
  }
}

/** Every file of the data dir with its content, to prove a refusal changed nothing. */
export function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).filter((f) => !f.startsWith('tlsfleet.db')).map((f) => [f, readFileSync(join(dir, f), 'hex')]));
}
