import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startProvisioningProcess, type Service } from './cli.js';
import { tempDir } from './temp-dir.js';

/** An initialised data dir and a running `tlsfleet provisioning` process on a free port. */
export interface ProvisioningEnv {
  dir: string;
  dataDir: string;
  service: Service;
  url: string;
  ca: string;
  adminToken: string;
  /** Mints a token with the CLI, offline against the store the service uses. */
  token(subject: string, extra?: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startProvisioningEnv(opts: { trustDomain?: string; serviceArgs?: string[] } = {}): Promise<ProvisioningEnv> {
  const tmp = tempDir('tlsfleet-e2e-');
  const dataDir = join(tmp.path, 'data');
  const init = await runCli(['init', '--data-dir', dataDir, ...(opts.trustDomain ? ['--trust-domain', opts.trustDomain] : [])]);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  const service = await startProvisioningProcess(dataDir, opts.serviceArgs);
  return {
    dir: tmp.path,
    dataDir,
    service,
    url: service.url,
    ca: readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8'),
    adminToken: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(),
    async token(subject, extra = []) {
      const r = await runCli(['token', '--data-dir', dataDir, '--device', subject, ...extra]);
      if (r.code !== 0) throw new Error(`token failed: ${r.stderr}`);
      return r.stdout.trim();
    },
    async stop() {
      await service.stop();
      tmp.cleanup();
    },
  };
}
