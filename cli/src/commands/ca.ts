import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DataDir, installIntermediate, openStore, requestIntermediate, retireIntermediate, signIntermediate } from '@tlsfleet/provisioning';
import { duration, parseFlags, required } from '../args.js';
import { openAuthority } from '../offline-authority.js';
import { UsageError } from '../usage-error.js';
import { checkStore } from './provisioning.js';

const FIVE_YEARS_SECONDS = 5 * 365 * 86_400;

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { request, sign, install, retire };

/** `tlsfleet ca request|sign|install|retire`: intermediate rotation with the root key offline (docs/deployment.md). */
export async function caCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run || !Object.hasOwn(SUBCOMMANDS, sub as string)) throw new UsageError(`give a subcommand: ${Object.keys(SUBCOMMANDS).join(', ')}`);
  return run(rest);
}

/** On the serving data dir: a new intermediate key (0600) and CSR; prints the CSR's path. */
async function request(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { 'data-dir': { type: 'string' } });
  const { csrPath } = await requestIntermediate(DataDir.open(required(f['data-dir'], '--data-dir')));
  process.stderr.write('new intermediate key written (0600); take the CSR to the machine that holds the root key and run `tlsfleet ca sign`\n');
  process.stdout.write(`${csrPath}\n`);
  return 0;
}

/** On the offline machine: the root signs the CSR; needs no data dir. */
async function sign(argv: string[]): Promise<number> {
  const f = parseFlags(argv, {
    csr: { type: 'string' },
    'root-cert': { type: 'string' },
    'root-key': { type: 'string' },
    out: { type: 'string' },
    lifetime: { type: 'string' },
    subject: { type: 'string' },
    replaces: { type: 'string' },
  });
  const out = resolve(required(f.out, '--out'));
  const pem = await signIntermediate({
    csrPem: readInput(required(f.csr, '--csr'), '--csr'),
    rootCertPem: readInput(required(f['root-cert'], '--root-cert'), '--root-cert'),
    rootKeyPem: readInput(required(f['root-key'], '--root-key'), '--root-key'),
    lifetimeSeconds: duration(f.lifetime, '--lifetime') ?? FIVE_YEARS_SECONDS,
    subject: f.subject,
    replacesPem: f.replaces === undefined ? undefined : readInput(f.replaces, '--replaces'),
  });
  try {
    writeFileSync(out, pem, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    throw new UsageError(`--out ${out}: ${(err as NodeJS.ErrnoException).code === 'EEXIST' ? 'exists already; refusing to overwrite' : (err as Error).message}`);
  }
  process.stderr.write(`signed intermediate written to ${out}; take it back and run \`tlsfleet ca install\`\n`);
  return 0;
}

/** On the serving data dir: the signed intermediate becomes the signer; the previous one stays trusted. */
async function install(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { 'data-dir': { type: 'string' }, cert: { type: 'string' }, store: { type: 'string' } });
  const dir = required(f['data-dir'], '--data-dir');
  const storeUrl = checkStore(f.store);
  const installed = await installIntermediate(DataDir.open(dir), readInput(required(f.cert, '--cert'), '--cert'));
  // Both CRLs now: the previous intermediate's for its certificates, the new one's for the broker.
  const { publishCrl, close } = await openAuthority(dir, storeUrl);
  try {
    await publishCrl();
  } finally {
    await close();
  }
  process.stderr.write(
    `installed ${installed.subject} (until ${installed.notAfter.toISOString()}); ${installed.previousSubject} is now the previous intermediate.\n` +
      '  ca-bundle.pem trusts both; server and admin certificates were re-issued under the new one.\n' +
      '  next: SIGHUP the broker (or let it notice), restart provisioning, then `tlsfleet ca retire` once the overlap is over.\n',
  );
  return 0;
}

/** On the serving data dir, after the overlap: drops the previous intermediate. */
async function retire(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { 'data-dir': { type: 'string' }, force: { type: 'boolean' }, store: { type: 'string' } });
  const dataDir = DataDir.open(required(f['data-dir'], '--data-dir'));
  const store = await openStore(checkStore(f.store), dataDir.path('database'));
  try {
    const retired = await retireIntermediate(dataDir, store, { force: f.force === true });
    process.stderr.write(`retired ${retired.subject}: removed from ca-bundle.pem, its key and CRL deleted.\n`);
    if (retired.stillLive > 0) {
      process.stderr.write(`  --force: ${retired.stillLive} certificate(s) it issued are still valid until ${retired.lastNotAfter?.toISOString()}; the broker closes their sessions and refuses them once it reloads ca-bundle.pem, and their devices can still renew over mTLS (revoke a device to stop that too).\n`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

function readInput(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}
