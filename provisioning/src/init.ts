import 'reflect-metadata';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { DEFAULT_TRUST_DOMAIN, derToPem, isValidTrustDomain, spiffeUri } from '@tlsfleet/common';
import { buildCrl } from './authority/crl.js';
import { serialHex, signingAlgorithm } from './ca/ca-keys.js';
import { createRootCa } from './ca/create-root.js';
import { DATA_FILES, DataDirError, type DataDirConfig } from './data-dir.js';

export interface InitOptions {
  dataDir: string;
  /** Default `tlsfleet.local`. */
  trustDomain?: string;
  /** Extra DNS names or IP addresses for the server certificates (localhost and 127.0.0.1 always). */
  serverNames?: readonly string[];
  /** Injected clock for tests; default Date.now. */
  now?: () => number;
}

const DAY_MS = 86_400_000;
const ROOT_LIFETIME_MS = 10 * 365 * DAY_MS;
const INTERMEDIATE_LIFETIME_MS = 5 * 365 * DAY_MS;
const SERVER_LIFETIME_MS = 397 * DAY_MS;
const BACKDATE_MS = 5 * 60_000;

const EC = signingAlgorithm;

/**
 * Creates a data dir: a root CA (P-384) that only signs the intermediate, an intermediate
 * (P-256) that signs everything else, server certificates for provisioning and broker, an
 * admin client certificate and admin token, the trust bundle and config. Refuses a
 * non-empty directory so an existing CA is never overwritten.
 */
export async function initDataDir(opts: InitOptions): Promise<DataDirConfig> {
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  if (!isValidTrustDomain(trustDomain)) throw new DataDirError(`--trust-domain ${JSON.stringify(trustDomain)} is not a lower-case DNS name`);
  const serverNames = ['localhost', '127.0.0.1', '::1', ...(opts.serverNames ?? [])];
  for (const n of serverNames) {
    if (!isIP(n) && !/^(?=.{1,253}$)([A-Za-z0-9*]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(n)) {
      throw new DataDirError(`--server-name ${JSON.stringify(n)} is neither a DNS name nor an IP address`);
    }
  }
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  if (readdirSync(opts.dataDir).length > 0) {
    throw new DataDirError(`${opts.dataDir} is not empty; refusing to overwrite an existing CA`);
  }
  const now = opts.now?.() ?? Date.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const crypto = webcrypto;

  const { certificate: root, keys: rootKeys } = await createRootCa({ trustDomain, now, lifetimeMs: ROOT_LIFETIME_MS });

  const intermediateKeys = await generate('P-256');
  const intermediate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex(),
      subject: `CN=tlsfleet intermediate CA, O=${trustDomain}`,
      issuer: root.subject,
      notBefore,
      notAfter: new Date(now + INTERMEDIATE_LIFETIME_MS),
      publicKey: intermediateKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: EC('P-384'),
      extensions: [
        // pathLen 0: the intermediate signs end entities only (RFC 5280 §4.2.1.9).
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(intermediateKeys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(root, false, crypto),
      ],
    },
    crypto,
  );

  const leaf = async (cn: string, san: x509.JsonGeneralNames, usage: string) => {
    const keys = await generate('P-256');
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialHex(),
        subject: `CN=${cn}`,
        issuer: intermediate.subject,
        notBefore,
        notAfter: new Date(now + SERVER_LIFETIME_MS),
        publicKey: keys.publicKey,
        signingKey: intermediateKeys.privateKey,
        signingAlgorithm: EC('P-256'),
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([usage], false),
          new x509.SubjectAlternativeNameExtension(san, false),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
          await x509.AuthorityKeyIdentifierExtension.create(intermediate, false, crypto),
        ],
      },
      crypto,
    );
    return { chain: cert.toString('pem') + '\n' + intermediate.toString('pem') + '\n', key: await pkcs8Pem(keys.privateKey) };
  };
  const serverSan: x509.JsonGeneralNames = serverNames.map((n) => (isIP(n) ? { type: 'ip', value: n } : { type: 'dns', value: n }));
  const provisioning = await leaf('tlsfleet provisioning', serverSan, x509.ExtendedKeyUsage.serverAuth);
  const broker = await leaf('tlsfleet broker', serverSan, x509.ExtendedKeyUsage.serverAuth);
  const admin = await leaf('operator', [{ type: 'url', value: spiffeUri({ kind: 'admin', name: 'operator', trustDomain }) }], x509.ExtendedKeyUsage.clientAuth);

  const config: DataDirConfig = { version: 1, trustDomain, createdAt: new Date(now).toISOString() };
  const put = (file: keyof typeof DATA_FILES, content: string, secret = false) =>
    writeFileSync(join(opts.dataDir, DATA_FILES[file]), content, { mode: secret ? 0o600 : 0o644, flag: 'wx' });
  put('rootKey', await pkcs8Pem(rootKeys.privateKey), true);
  put('intermediateKey', await pkcs8Pem(intermediateKeys.privateKey), true);
  put('provisioningKey', provisioning.key, true);
  put('brokerKey', broker.key, true);
  put('adminKey', admin.key, true);
  put('adminToken', `tfa_${randomBytes(32).toString('base64url')}\n`, true);
  put('rootCert', root.toString('pem') + '\n');
  put('intermediateCert', intermediate.toString('pem') + '\n');
  // Root and intermediate: peers that receive only a leaf can still build the chain.
  put('caBundle', root.toString('pem') + '\n' + intermediate.toString('pem') + '\n');
  put('provisioningCert', provisioning.chain);
  put('brokerCert', broker.chain);
  put('adminCert', admin.chain);
  // An empty CRL, number 0 (the store's first is 1), so a broker started before provisioning has a
  // CRL to load; valid for 24 h, like the ones provisioning issues by default.
  const emptyCrl = await buildCrl({
    issuerCertificatePem: intermediate.toString('pem'),
    issuerKey: KeyObject.from(intermediateKeys.privateKey),
    entries: [],
    thisUpdate: new Date(now),
    nextUpdate: new Date(now + DAY_MS),
    crlNumber: 0n,
  });
  writeFileSync(join(opts.dataDir, DATA_FILES.crl), emptyCrl, { mode: 0o644, flag: 'wx' });
  put('config', JSON.stringify(config, null, 2) + '\n');
  return config;

  async function generate(curve: 'P-256' | 'P-384'): Promise<webcrypto.CryptoKeyPair> {
    return (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  }
  async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
    return derToPem(new Uint8Array(await crypto.subtle.exportKey('pkcs8', key)), 'PRIVATE KEY');
  }
}
