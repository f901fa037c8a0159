import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startProvisioningProcess, type Service } from './cli.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import { tempDir } from './temp-dir.js';

/**
 * Two provisioning instances, one data dir (the CA) and one PostgreSQL database: what runs
 * behind one load balancer.
 */
export interface PostgresFleet {
  readonly pg: PostgresServer;
  readonly storeUrl: string;
  readonly dataDir: string;
  readonly a: Service;
  readonly b: Service;
  readonly ca: string;
  readonly adminToken: string;
  stop(): Promise<void>;
}

/** A throwaway server and database, an initialised data dir, and both instances started together (they race for the migration lock). */
export async function startPostgresFleet(opts: { database: string; password?: string }): Promise<PostgresFleet> {
  const pg = await startPostgres();
  const tmp = tempDir('tlsfleet-pg-e2e-');
  const services: Service[] = [];
  const stop = async () => {
    await Promise.all(services.map((s) => s.stop()));
    await pg.stop();
    tmp.cleanup();
  };
  try {
    await pg.createDatabase(opts.database);
    const storeUrl = pg.url(opts.database, opts.password);
    const dataDir = join(tmp.path, 'data');
    const init = await runCli(['init', '--data-dir', dataDir]);
    if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
    const started = await Promise.allSettled([0, 1].map(() => startProvisioningProcess(dataDir, ['--store', storeUrl])));
    for (const s of started) if (s.status === 'fulfilled') services.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [a, b] = services as [Service, Service];
    const ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
    const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    return { pg, storeUrl, dataDir, a, b, ca, adminToken, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
