import { isPostgresUrl, startProvisioning } from '@tlsfleet/provisioning';
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
  const storeUrl = checkStore(f.store);
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
    storeUrl,
  });
  process.stdout.write(`provisioning listening on ${running.url}\n`);
  await signalled;
  await running.close();
  return 0;
}

/**
 * `--store`: absent or "sqlite" → the data dir's SQLite file; postgres:// or postgresql:// → that
 * database. Returns the value to pass on. A refused value is not echoed: it may hold a password.
 */
export function checkStore(store: string | undefined): string | undefined {
  if (store === undefined || store === 'sqlite') return store;
  if (isPostgresUrl(store)) {
    if (!URL.canParse(store)) throw new UsageError('--store: the postgres:// URL does not parse (percent-encode special characters in the user name and password)');
    return store;
  }
  throw new UsageError('--store takes "sqlite" or a postgres://user@host:port/database URL');
}
