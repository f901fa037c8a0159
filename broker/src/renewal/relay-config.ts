import { existsSync, statSync } from 'node:fs';

/** A `--relay-provisioning` / `--relay-identity` value the broker cannot start with. */
export class RelayConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelayConfigError';
  }
}

/** Checks the two flags without touching the network or writing anything; throws RelayConfigError. */
export function checkRelayOptions(url: string, identityDir: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RelayConfigError(`--relay-provisioning must be an https:// URL of the provisioning service, not ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'https:') throw new RelayConfigError(`--relay-provisioning must be an https:// URL of the provisioning service, not ${JSON.stringify(url)}`);
  if (parsed.search !== '' || parsed.hash !== '') throw new RelayConfigError('--relay-provisioning takes a base URL without query or fragment');
  if (!existsSync(identityDir) || !statSync(identityDir).isDirectory()) {
    throw new RelayConfigError(`--relay-identity ${identityDir} is not a directory: enroll the broker's service identity there first (tlsfleet device enroll --token <service token> --state ${identityDir} ...)`);
  }
  return parsed;
}
