import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import { DataDir, derToPem, type IdentityKind } from '@tlsfleet/common';
import { authorityInMemory } from './authority-in-memory.js';

// Enrolls many client identities with a data dir's intermediate CA through its Authority
// (the issuance path of `POST /v1/enroll`, minus HTTPS and the database: nothing is
// recorded), for load benchmarks and tests that need thousands of distinct identities.
// Every identity has its own P-256 key and a certificate with the production profile
// (docs/reference/files.md). Spawned by the broker benchmark's fixture.
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

const MAX_COUNT = 100_000;
const BATCH = 64;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

const [dataDirPath, outFile, countArg, ...serviceNames] = process.argv.slice(2);
const count = Number(countArg);
if (!dataDirPath || !outFile || !Number.isInteger(count) || count < 0 || count > MAX_COUNT) {
  process.stderr.write(`usage: mint-devices.js DATA_DIR OUT_FILE COUNT(0..${MAX_COUNT}) [SERVICE_NAME...]\n`);
  process.exit(2);
}

const dataDir = DataDir.open(dataDirPath);
const { authority } = authorityInMemory(dataDir);

async function mint(kind: 'device' | 'service', name: string): Promise<MintedIdentity> {
  const { token } = await authority.mintToken({ subject: name, kind, createdBy: 'bench' });
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${name}`, keys, signingAlgorithm: ECDSA_P256 }, webcrypto);
  const issued = await authority.enroll(token, new Uint8Array(csr.rawData));
  return { kind, name, certChain: issued.chainPem, key: derToPem(Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), 'PRIVATE KEY') };
}

const started = performance.now();
// In batches: WebCrypto generates keys and signs on libuv's thread pool, beside this thread.
const devices: MintedIdentity[] = [];
for (let i = 0; i < count; i += BATCH) devices.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => mint('device', `device-${i + j}`)))));
const services = await Promise.all(serviceNames.map((name) => mint('service', name)));
const minted: MintedIdentities = { trustDomain: dataDir.config.trustDomain, devices, services };
writeFileSync(outFile, JSON.stringify(minted), { mode: 0o600 });
process.stdout.write(`enrolled ${count + serviceNames.length} identities in ${Math.round(performance.now() - started)} ms\n`);
