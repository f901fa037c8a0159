import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { derToPem, type Identity, type IdentityKind } from '@tlsfleet/common';
import { DataDir } from '../data-dir.js';
import { buildDeviceCertificate, loadCaSigner, randomSerial } from '../index.js';

// Mints many client certificates straight from a data dir's intermediate CA, for load
// benchmarks that need thousands of distinct identities (the HTTPS enrollment path runs at
// a few hundred per second; this runs at thousands). Benchmarks in other packages spawn it
// rather than import provisioning. Every certificate has its own P-256 key and the profile
// of docs/reference/files.md (buildDeviceCertificate), valid from 5 minutes ago for `--hours`.
//
// Usage: node mint-devices.js DATA_DIR OUT_FILE COUNT [SERVICE_NAME...]
// Writes OUT_FILE (mode 0600) as JSON: MintedIdentities; devices are named device-0..COUNT-1.

export interface MintedIdentity {
  readonly kind: IdentityKind;
  readonly name: string;
  /** Leaf then intermediate, PEM: what a client presents. */
  readonly certChain: string;
  /** PKCS#8 PEM. */
  readonly key: string;
}

export interface MintedIdentities {
  readonly trustDomain: string;
  readonly devices: readonly MintedIdentity[];
  readonly services: readonly MintedIdentity[];
}

const BACKDATE_MS = 5 * 60_000;
const LIFETIME_MS = 24 * 3600_000;
const MAX_COUNT = 100_000;

const [dataDirPath, outFile, countArg, ...serviceNames] = process.argv.slice(2);
const count = Number(countArg);
if (!dataDirPath || !outFile || !Number.isInteger(count) || count < 0 || count > MAX_COUNT) {
  process.stderr.write(`usage: mint-devices.js DATA_DIR OUT_FILE COUNT(0..${MAX_COUNT}) [SERVICE_NAME...]\n`);
  process.exit(2);
}

const dataDir = DataDir.open(dataDirPath);
const intermediatePem = dataDir.read('intermediateCert');
const signer = loadCaSigner(intermediatePem, dataDir.readSecret('intermediateKey'));
const trustDomain = dataDir.config.trustDomain;
const now = Date.now();

function mint(kind: IdentityKind, name: string): MintedIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const identity: Identity = { kind, name, trustDomain };
  const der = buildDeviceCertificate({
    issuer: signer,
    subjectPublicKeyDer: publicKey.export({ type: 'spki', format: 'der' }),
    identity,
    serial: randomSerial(),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + LIFETIME_MS),
  });
  return {
    kind,
    name,
    certChain: derToPem(der, 'CERTIFICATE') + intermediatePem,
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

const started = performance.now();
const minted: MintedIdentities = {
  trustDomain,
  devices: Array.from({ length: count }, (_, i) => mint('device', `device-${i}`)),
  services: serviceNames.map((name) => mint('service', name)),
};
writeFileSync(outFile, JSON.stringify(minted), { mode: 0o600 });
const ms = performance.now() - started;
process.stdout.write(`minted ${count + serviceNames.length} certificates in ${Math.round(ms)} ms\n`);
