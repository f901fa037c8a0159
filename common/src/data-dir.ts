import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isValidTrustDomain } from './identity.js';

/** File names inside a data dir. `ca-bundle.pem` and `admin.token` are stable (docs/reference/files.md). */
export const DATA_FILES = {
  config: 'config.json',
  caBundle: 'ca-bundle.pem',
  rootCert: 'root-ca.pem',
  /** The only file the running services never read: take it offline after init. */
  rootKey: 'root-ca.key',
  intermediateCert: 'intermediate-ca.pem',
  intermediateKey: 'intermediate-ca.key',
  provisioningCert: 'provisioning.pem',
  provisioningKey: 'provisioning.key',
  brokerCert: 'broker.pem',
  brokerKey: 'broker.key',
  adminCert: 'admin.pem',
  adminKey: 'admin.key',
  adminToken: 'admin.token',
  database: 'tlsfleet.db',
  /** The current CRL (DER), replaced atomically on every change: the broker's file source. */
  crl: 'crl.der',
  /** Intermediate rotation (`tlsfleet ca ...`): the key and CSR awaiting the root's signature. */
  nextIntermediateKey: 'next-intermediate-ca.key',
  nextIntermediateCsr: 'next-intermediate-ca.csr',
  /** The intermediate replaced by `ca install`, kept until `ca retire`: its key signs only its CRL. */
  previousIntermediateCert: 'previous-intermediate-ca.pem',
  previousIntermediateKey: 'previous-intermediate-ca.key',
  /** The previous intermediate's CRL (DER), so relying parties can check its certificates. */
  previousCrl: 'previous-crl.der',
  /** Root rotation: when `ca trust-root` added each root (SHA-256 fingerprint → ISO time), for `ca install`'s warning. */
  trustedRoots: 'trusted-roots.json',
} as const;

export type DataFile = keyof typeof DATA_FILES;

export interface DataDirConfig {
  readonly version: 1;
  readonly trustDomain: string;
  readonly createdAt: string;
}

/** A data dir whose config was read and checked once. */
export class DataDir {
  readonly dir: string;
  readonly config: DataDirConfig;

  private constructor(dir: string, config: DataDirConfig) {
    this.dir = dir;
    this.config = config;
  }

  static open(dir: string): DataDir {
    const file = join(dir, DATA_FILES.config);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new DataDirError(`${dir} is not a tlsfleet data dir (cannot read ${DATA_FILES.config}: ${(err as Error).message}); run \`tlsfleet init --data-dir ${dir}\` first`);
    }
    const c = raw as Partial<DataDirConfig>;
    if (c.version !== 1 || !isValidTrustDomain(c.trustDomain) || typeof c.createdAt !== 'string') {
      throw new DataDirError(`${file} is not a valid tlsfleet config (version 1 with a trustDomain)`);
    }
    return new DataDir(dir, Object.freeze({ version: 1, trustDomain: c.trustDomain, createdAt: c.createdAt }));
  }

  path(file: DataFile): string {
    return join(this.dir, DATA_FILES[file]);
  }

  has(file: DataFile): boolean {
    return existsSync(this.path(file));
  }

  read(file: DataFile): string {
    const p = this.path(file);
    try {
      return readFileSync(p, 'utf8');
    } catch (err) {
      throw new DataDirError(`cannot read ${p}: ${(err as Error).message}`);
    }
  }

  /** Reads a private key after checking that no one but the owner can read it. */
  readSecret(file: DataFile): string {
    const p = this.path(file);
    const mode = statSync(p, { throwIfNoEntry: false })?.mode;
    if (mode !== undefined && (mode & 0o077) !== 0) {
      throw new DataDirError(`${p} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${p}`);
    }
    return this.read(file);
  }
}

export class DataDirError extends Error {
  readonly code = 'data_dir';
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}
