import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DataDir, devicesLackingRoot, installIntermediate, newRoot, openStore, requestIntermediate, retireIntermediate, signIntermediate, trustRoot, untrustRoot, type Store } from '@tlsfleet/provisioning';
import { DEFAULT_TRUST_DOMAIN } from '@tlsfleet/common';
import { duration, readInput, required } from '../args.js';
import { openAuthority } from '../offline-authority.js';
import { UsageError } from '../usage-error.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { CA_INSTALL, CA_NEW_ROOT, CA_REQUEST, CA_RETIRE, CA_SIGN, CA_TRUST_ROOT, CA_UNTRUST_ROOT } from '../definitions/ca.js';
import { storeUrlOf } from '../store-url.js';

const YEAR_SECONDS = 365 * 86_400;
const FIVE_YEARS_SECONDS = 5 * YEAR_SECONDS;
/** An X.509 date past 9999 needs GeneralizedTime tricks no one tests; 100 years is plenty for a root. */
const MAX_ROOT_LIFETIME_SECONDS = 100 * YEAR_SECONDS;

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { request, sign, install, retire, 'new-root': newRootCommand, 'trust-root': trustRootCommand, 'untrust-root': untrustRootCommand };

/** `tlsfleet ca ...`: intermediate (request|sign|install|retire) and root (new-root|trust-root|untrust-root) rotation with root keys offline (docs/operations.md). */
export async function caCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run || !Object.hasOwn(SUBCOMMANDS, sub as string)) throw new UsageError(`give a subcommand: ${Object.keys(SUBCOMMANDS).join(', ')}`);
  return run(rest);
}

/** On the serving data dir: a new intermediate key (0600) and CSR; prints the CSR's path. */
async function request(argv: string[]): Promise<number> {
  const f = resolveFlags(CA_REQUEST, argv);
  const { csrPath } = await requestIntermediate(DataDir.open(required(f['data-dir'], '--data-dir')));
  process.stderr.write('new intermediate key written (0600); take the CSR to the machine that holds the root key and run `tlsfleet ca sign`\n');
  process.stdout.write(`${csrPath}\n`);
  return 0;
}

/** On the offline machine: the root signs the CSR; needs no data dir. */
async function sign(argv: string[]): Promise<number> {
  const f = resolveFlags(CA_SIGN, argv);
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
  const f = resolveFlags(CA_INSTALL, argv);
  const dir = required(f['data-dir'], '--data-dir');
  const storeUrl = storeUrlOf(f);
  const dataDir = DataDir.open(dir);
  const certPem = readInput(required(f.cert, '--cert'), '--cert');
  const lacking = await withStore(dataDir, storeUrl, (store) => devicesLackingRoot(dataDir, store, certPem));
  const installed = await installIntermediate(dataDir, certPem);
  if (lacking && lacking.devices.length > 0) {
    const since = lacking.trustedAt ? `since \`ca trust-root\` added it at ${lacking.trustedAt.toISOString()}` : 'since it was added (no record of when: not added with `ca trust-root`)';
    process.stderr.write(
      `WARNING: this intermediate is under another root. ${lacking.devices.length} device(s) have not renewed ${since}, so their trust bundle lacks it and they will fail to verify the servers: ${lacking.devices.slice(0, 10).join(', ')}${lacking.devices.length > 10 ? ', ...' : ''}\n` +
        '  the runbook waits one device certificate lifetime after `ca trust-root` before this step (docs/operations.md).\n',
    );
  }
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
  const f = resolveFlags(CA_RETIRE, argv);
  const dataDir = DataDir.open(required(f['data-dir'], '--data-dir'));
  const retired = await withStore(dataDir, storeUrlOf(f), (store) => retireIntermediate(dataDir, store, { force: f.force === true }));
  process.stderr.write(`retired ${retired.subject}: removed from ca-bundle.pem, its key and CRL deleted.\n`);
  if (retired.stillLive > 0) {
    process.stderr.write(`  --force: ${retired.stillLive} certificate(s) it issued are still valid until ${retired.lastNotAfter?.toISOString()}; the broker closes their sessions and refuses them once it reloads ca-bundle.pem, and their devices can still renew over mTLS (revoke a device to stop that too).\n`);
  }
  return 0;
}

/** On the offline machine: a new root (init's profile) in an empty directory; needs no data dir. */
async function newRootCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(CA_NEW_ROOT, argv);
  const lifetimeSeconds = duration(f.lifetime, '--lifetime') ?? 10 * YEAR_SECONDS;
  if (lifetimeSeconds > MAX_ROOT_LIFETIME_SECONDS) throw new UsageError('--lifetime: at most 100y');
  const created = await newRoot({ outDir: resolve(required(f.out, '--out')), trustDomain: f['trust-domain'] ?? DEFAULT_TRUST_DOMAIN, lifetimeSeconds });
  process.stderr.write(`new root until ${created.notAfter.toISOString()}; its key (0600) stays here. Take ${created.certPath} to the serving side and run \`tlsfleet ca trust-root\`\n`);
  process.stdout.write(`${created.certPath}\n`);
  return 0;
}

/** On the serving data dir, first step of a root rotation: the new root joins ca-bundle.pem. */
async function trustRootCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(CA_TRUST_ROOT, argv);
  const trusted = await trustRoot(DataDir.open(required(f['data-dir'], '--data-dir')), readInput(required(f.cert, '--cert'), '--cert'));
  process.stderr.write(
    `trusted ${trusted.subject} (until ${trusted.notAfter.toISOString()}) in ca-bundle.pem.\n` +
      '  next: SIGHUP the broker (or let it notice), restart provisioning; put ca-bundle.pem in factory images as the bootstrap CA; devices pick the root up at their next renewal.\n',
  );
  return 0;
}

/** On the serving data dir, last step of a root rotation: the old root leaves ca-bundle.pem. */
async function untrustRootCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(CA_UNTRUST_ROOT, argv);
  const dataDir = DataDir.open(required(f['data-dir'], '--data-dir'));
  const certPem = readInput(required(f.cert, '--cert'), '--cert');
  const removed = await withStore(dataDir, storeUrlOf(f), (store) => untrustRoot(dataDir, store, certPem, { force: f.force === true }));
  process.stderr.write(`removed ${removed.subject} from ca-bundle.pem; next: SIGHUP the broker (or let it notice) and restart provisioning.\n`);
  if (removed.stillLive > 0) {
    process.stderr.write(`  --force: ${removed.stillLive} certificate(s) that may chain to it are still valid until ${removed.lastNotAfter?.toISOString()}; they fail the TLS handshake once the broker reloads ca-bundle.pem.\n`);
  }
  return 0;
}

async function withStore<T>(dataDir: DataDir, storeUrl: string | undefined, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(storeUrl, dataDir.path('database'));
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}
