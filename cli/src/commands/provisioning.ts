import { startProvisioning } from '@tlsfleet/provisioning';
import { duration, parseFlags, port, positiveInt, required } from '../args.js';
import { UsageError } from '../usage-error.js';
import { untilSignal } from '../signals.js';

export async function provisioningCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, {
    'data-dir': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    store: { type: 'string' },
    'max-inflight': { type: 'string' },
    'client-rate': { type: 'string' },
    'client-burst': { type: 'string' },
    'crl-validity': { type: 'string' },
  });
  checkStore(f.store);
  // Handlers first: a SIGTERM that arrives as soon as we say we listen must still drain.
  const signalled = untilSignal();
  const running = await startProvisioning({
    dataDir: required(f['data-dir'], '--data-dir'),
    host: f.host,
    port: port(f.port, '--port', 8443),
    gate: {
      maxInFlight: positiveInt(f['max-inflight'], '--max-inflight', 64),
      perClientRate: positiveInt(f['client-rate'], '--client-rate', 20, 0),
      perClientBurst: positiveInt(f['client-burst'], '--client-burst', 40),
    },
    crlValiditySeconds: duration(f['crl-validity'], '--crl-validity'),
  });
  process.stdout.write(`provisioning listening on ${running.url}\n`);
  await signalled;
  await running.close();
  return 0;
}

export function checkStore(store: string | undefined): void {
  if (store === undefined || store === 'sqlite') return;
  if (/^postgres(ql)?:\/\//.test(store)) throw new UsageError('--store postgres://... is not supported by this version yet; the embedded SQLite store is used by default');
  throw new UsageError(`--store takes "sqlite" or a postgres:// URL, not ${JSON.stringify(store)}`);
}
