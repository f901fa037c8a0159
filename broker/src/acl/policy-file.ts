import { readFileSync } from 'node:fs';
import { parsePolicy, type AclPolicy } from '@tlsfleet/common';

/** Reads and validates an ACL policy file; throws with the file name and the exact path of a mistake. */
export function loadPolicyFile(file: string): AclPolicy {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  try {
    return parsePolicy(json);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}
