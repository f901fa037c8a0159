import { checks, defineCommand, type CommandGroup } from '@tlsfleet/common';
import { DATA_DIR, STORE_FLAGS } from './shared-flags.js';

const FORCE = { type: 'boolean', help: 'go ahead although live certificates depend on it' } as const;
const CERT = { type: 'string', value: 'FILE', help: 'certificate (PEM)', required: true, complete: 'file' } as const;

export const CA_REQUEST = defineCommand({
  name: 'ca request',
  summary: 'On the serving data dir: a new intermediate key (0600) and CSR; prints the CSR\'s path.',
  flags: { 'data-dir': DATA_DIR },
});

export const CA_SIGN = defineCommand({
  name: 'ca sign',
  summary: 'On the offline machine: the root signs an intermediate CSR; needs no data dir.',
  flags: {
    csr: { type: 'string', value: 'FILE', help: 'the CSR `ca request` wrote', required: true, complete: 'file' },
    'root-cert': { type: 'string', value: 'FILE', help: 'root certificate (PEM)', required: true, complete: 'file' },
    'root-key': { type: 'string', value: 'FILE', help: 'root private key (PEM)', required: true, complete: 'file' },
    out: { type: 'string', value: 'FILE', help: 'where the signed intermediate goes (never overwritten)', required: true, complete: 'file' },
    lifetime: { type: 'string', value: 'DURATION', help: 'lifetime of the intermediate', default: '1825d', check: checks.durationSeconds },
    subject: { type: 'string', value: 'DN', help: 'subject of the intermediate', default: 'CN=tlsfleet intermediate CA {UTC time}, O={the root\'s O}' },
    replaces: { type: 'string', value: 'FILE', help: 'the intermediate it replaces, to carry its name constraints over', complete: 'file' },
  },
});

export const CA_INSTALL = defineCommand({
  name: 'ca install',
  summary: 'On the serving data dir: the signed intermediate becomes the signer; the previous one stays trusted.',
  flags: { 'data-dir': DATA_DIR, cert: { ...CERT, help: 'the intermediate `ca sign` wrote' }, ...STORE_FLAGS },
});

export const CA_RETIRE = defineCommand({
  name: 'ca retire',
  summary: 'On the serving data dir, after the overlap: drops the previous intermediate.',
  flags: { 'data-dir': DATA_DIR, force: FORCE, ...STORE_FLAGS },
});

export const CA_NEW_ROOT = defineCommand({
  name: 'ca new-root',
  summary: 'On the offline machine: a new root (init\'s profile) in an empty directory.',
  flags: {
    out: { type: 'string', value: 'DIR', help: 'empty directory for the root certificate and key', required: true, complete: 'dir' },
    'trust-domain': { type: 'string', value: 'TD', help: 'SPIFFE trust domain', default: 'tlsfleet.local' },
    lifetime: { type: 'string', value: 'DURATION', help: 'lifetime of the root (at most 100y)', default: '10y', check: checks.durationSeconds },
  },
});

export const CA_TRUST_ROOT = defineCommand({
  name: 'ca trust-root',
  summary: 'On the serving data dir, first step of a root rotation: the new root joins ca-bundle.pem.',
  flags: { 'data-dir': DATA_DIR, cert: { ...CERT, help: 'the new root certificate' } },
});

export const CA_UNTRUST_ROOT = defineCommand({
  name: 'ca untrust-root',
  summary: 'On the serving data dir, last step of a root rotation: the old root leaves ca-bundle.pem.',
  flags: { 'data-dir': DATA_DIR, cert: { ...CERT, help: 'the old root certificate' }, force: FORCE, ...STORE_FLAGS },
});

export const CA_GROUP: CommandGroup = {
  name: 'ca',
  summary: 'Intermediate (request, sign, install, retire) and root (new-root, trust-root, untrust-root) rotation with root keys offline.',
  subcommands: [CA_REQUEST, CA_SIGN, CA_INSTALL, CA_RETIRE, CA_NEW_ROOT, CA_TRUST_ROOT, CA_UNTRUST_ROOT],
};
