import { readFileSync } from 'node:fs';
import { parsePolicy, type AclPolicy } from '@tlsfleet/common';

/** An ACL policy file that cannot be read or does not validate: a configuration error, said in one line. */
export class AclPolicyFileError extends Error {
  readonly code = 'acl_policy';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AclPolicyFileError';
  }
}

/** Reads and validates an ACL policy file; throws an AclPolicyFileError with the file name and the exact path of a mistake. */
export function loadPolicyFile(file: string): AclPolicy {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AclPolicyFileError(`${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return parsePolicy(json);
  } catch (err) {
    throw new AclPolicyFileError(`${file}: ${(err as Error).message}`, { cause: err });
  }
}
