import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DATA_FILES, initDataDir, startProvisioning } from '@tlsfleet/provisioning';
import { parseFlags, port } from '../args.js';
import { untilSignal } from '../signals.js';

/** Zero-setup local run: init `.tlsfleet/` if needed, then serve provisioning. */
export async function devCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { 'data-dir': { type: 'string' }, port: { type: 'string' } });
  const dir = resolve(f['data-dir'] ?? '.tlsfleet');
  if (!existsSync(join(dir, DATA_FILES.config))) {
    await initDataDir({ dataDir: dir });
    process.stderr.write(`initialised a development CA in ${dir}\n`);
  }
  // Handlers first: a SIGTERM that arrives as soon as we say we listen must still drain.
  const signalled = untilSignal();
  const running = await startProvisioning({ dataDir: dir, host: '127.0.0.1', port: port(f.port, '--port', 8443) });
  process.stdout.write(
    `provisioning: https://localhost:${running.port}\n` +
      `mint a token: npx tlsfleet token --data-dir ${dir} --device my-device\n` +
      `trust bundle: ${join(dir, DATA_FILES.caBundle)}\n`,
  );
  await signalled;
  await running.close();
  return 0;
}
