import { resolve } from 'node:path';
import { initDataDir, DATA_FILES } from '@tlsfleet/provisioning';
import { required } from '../args.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { INIT } from '../definitions/offline-commands.js';

export async function initCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(INIT, argv);
  const dir = resolve(required(f['data-dir'], '--data-dir'));
  const config = await initDataDir({ dataDir: dir, trustDomain: f['trust-domain'], serverNames: f['server-name'] });
  process.stderr.write(
    `initialised ${dir} for trust domain ${config.trustDomain}\n` +
      `  trust bundle: ${DATA_FILES.caBundle}   admin token: ${DATA_FILES.adminToken}\n` +
      `  the root key (${DATA_FILES.rootKey}) is not needed by the services: move it offline (see docs/operations.md, "Take the root key offline").\n`,
  );
  return 0;
}
