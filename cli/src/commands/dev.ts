import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startBroker } from '@tlsfleet/broker';
import { DATA_FILES, initDataDir, startProvisioning } from '@tlsfleet/provisioning';
import { port } from '../args.js';
import { untilSignal } from '../signals.js';
import { serviceLogs } from '../service-logs.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { DEV } from '../definitions/dev.js';

/** Zero-setup local run: init `.tlsfleet/` if needed, then provisioning and the broker sharing it. */
export async function devCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(DEV, argv);
  const loggerFor = serviceLogs(f);
  const dir = resolve(f['data-dir'] ?? '.tlsfleet');
  if (!existsSync(join(dir, DATA_FILES.config))) {
    await initDataDir({ dataDir: dir });
    process.stderr.write(`initialised a development CA in ${dir}\n`);
  }
  // Handlers first: a SIGTERM that arrives as soon as we say we listen must still drain.
  const signalled = untilSignal();
  const provisioningPort = port(f.port, '--port', 8443);
  // The server certificate names localhost: certificates point relying parties at this CRL.
  const publicUrl = provisioningPort === 0 ? undefined : `https://localhost:${provisioningPort}`;
  const provisioning = await startProvisioning({ dataDir: dir, host: '127.0.0.1', port: provisioningPort, publicUrl, logger: loggerFor('provisioning') });
  // The broker reads revocations from the shared data dir's crl.der, published by provisioning.
  // In-band renewal: the broker hands a device's MQTT renew request to this process's authority.
  const broker = await startBroker({
    dataDir: dir,
    host: '127.0.0.1',
    port: port(f['broker-port'], '--broker-port', 8883),
    healthPort: port(f['health-port'], '--health-port', 9883),
    logger: loggerFor('broker'),
    renewer: (req) => provisioning.renewRelayed(req),
  });
  // stdout carries log lines only: the hints are fields of one (shown as text with --log-format pretty).
  loggerFor('dev').info(
    {
      provisioning: `https://localhost:${provisioning.port}`,
      broker: `mqtts://localhost:${broker.port}`,
      health: broker.healthUrl,
      mintToken: `npx tlsfleet token --data-dir ${dir} --device my-device`,
      trustBundle: join(dir, DATA_FILES.caBundle),
    },
    'dev ready',
  );
  await signalled;
  await Promise.all([broker.close(), provisioning.close()]);
  return 0;
}
