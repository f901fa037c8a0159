import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CONFIG = `[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[root_pathlen0]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[root_named]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical,permitted;URI:.tlsfleet.local
[root_named_host]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical,permitted;URI:tlsfleet.local,excluded;URI:.other.test
[root_named_excluded]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical,excluded;URI:tlsfleet.local
[root_named_dns]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical,permitted;DNS:example.com
[root_unknown_critical]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
1.3.6.1.4.1.55555.1 = critical,ASN1:NULL
[no_crl_sign]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://tlsfleet.local/device/d1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[crl_plain]
authorityKeyIdentifier = keyid:always
[crl_idp]
authorityKeyIdentifier = keyid:always
issuingDistributionPoint = critical,@idp
[idp]
fullname = URI:http://example.test/crl
onlyuser = TRUE
`;

export const INTERMEDIATE_SUBJECT = '/O=tlsfleet test/CN=tlsfleet intermediate CA';

export interface TestCrlParams {
  /** Revoked serials, hex. */
  revoked?: readonly string[];
  /** cRLNumber; null leaves the extension out. Default 1. */
  number?: bigint | null;
  /** Which key signs: default the intermediate. */
  signer?: 'intermediate' | 'root' | 'impostor' | 'noCrlSign';
  /** Validity, hours; default 24. */
  hours?: number;
  /** Extra CRL extensions section of the config; default `crl_plain`. */
  extensions?: 'crl_plain' | 'crl_idp';
}

/**
 * A throwaway PKI made with the openssl CLI: a P-384 root and a P-256 intermediate as
 * `tlsfleet init` makes them, an impostor with the intermediate's exact subject but its own
 * key, an intermediate without cRLSign, and a server certificate for 127.0.0.1. Test-only.
 */
export class OpensslPki {
  readonly dir: string;
  private crls = 0;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static create(): OpensslPki {
    const pki = new OpensslPki(mkdtempSync(join(tmpdir(), 'tlsfleet-crl-pki-')));
    writeFileSync(join(pki.dir, 'ca.cnf'), CONFIG);
    pki.key('root', 'P-384');
    pki.openssl('req', '-x509', '-config', 'ca.cnf', '-extensions', 'root', '-key', 'root.key', '-subj', '/O=tlsfleet test/CN=tlsfleet root CA', '-days', '2', '-sha384', '-out', 'root.pem');
    pki.issue('intermediate', 'root', 'intermediate', INTERMEDIATE_SUBJECT);
    pki.issue('noCrlSign', 'root', 'no_crl_sign', '/O=tlsfleet test/CN=no crl sign');
    pki.key('impostor', 'P-256');
    pki.openssl('req', '-x509', '-config', 'ca.cnf', '-extensions', 'root', '-key', 'impostor.key', '-subj', INTERMEDIATE_SUBJECT, '-days', '2', '-out', 'impostor.pem');
    pki.issue('server', 'intermediate', 'server', '/CN=tlsfleet provisioning');
    return pki;
  }

  /** The trust bundle the broker would read: root, then intermediate. */
  get bundlePem(): string {
    return this.read('root.pem') + this.read('intermediate.pem');
  }

  /** Root, intermediate and the intermediate without cRLSign: never the impostor. */
  issuers(): X509Certificate[] {
    return ['root', 'intermediate', 'noCrlSign'].map((name) => new X509Certificate(this.read(`${name}.pem`)));
  }

  pem(name: string): string {
    return this.read(`${name}.pem`);
  }

  /** The private key made for the certificate `name`, PEM. */
  privateKeyPem(name: string): string {
    return this.read(`${name}.key`);
  }

  /** The server certificate's key and chain (leaf, intermediate) for node:https. */
  serverCredentials(): { key: string; cert: string } {
    return { key: this.read('server.key'), cert: this.read('server.pem') + this.read('intermediate.pem') };
  }

  /** A client leaf of the tlsfleet profile (device d1) that the CA named `issuer` signs for `days` (default 2, as the CAs), PEM. */
  clientLeaf(name: string, issuer: string, days = 2): string {
    this.issue(name, issuer, 'client', `/CN=${name}`, days);
    return this.read(`${name}.pem`);
  }

  /** Another self-signed P-384 root, with the extensions of a `ca.cnf` section (`root_pathlen0`, `root_named`, ...), PEM. */
  extraRoot(name: string, section: string): string {
    this.key(name, 'P-384');
    this.openssl('req', '-x509', '-config', 'ca.cnf', '-extensions', section, '-key', `${name}.key`, '-subj', `/O=tlsfleet test/CN=${name}`, '-days', '2', '-sha384', '-out', `${name}.pem`);
    return this.read(`${name}.pem`);
  }

  /** Another intermediate CA (P-256) that `issuer` signs for `days` with `digest`, PEM. */
  extraIntermediate(name: string, issuer: string, days = 2, digest = 'sha384'): string {
    this.issue(name, issuer, 'intermediate', `/O=tlsfleet test/CN=${name}`, days, digest);
    return this.read(`${name}.pem`);
  }

  /** A DER CRL from `openssl ca -gencrl`, with an index.txt listing the revoked serials. */
  crl(params: TestCrlParams = {}): Buffer {
    const work = join(this.dir, `crl-${++this.crls}`);
    mkdirSync(work);
    const index = (params.revoked ?? []).map((serial) => `R\t301231235959Z\t250101000000Z\t${evenHex(serial)}\tunknown\t/CN=revoked\n`).join('');
    writeFileSync(join(work, 'index.txt'), index);
    const number = params.number === undefined ? 1n : params.number;
    if (number !== null) writeFileSync(join(work, 'crlnumber'), `${evenHex(number.toString(16))}\n`);
    writeFileSync(
      join(work, 'ca.cnf'),
      `${CONFIG}[ca]\ndefault_ca = ca_default\n[ca_default]\ndatabase = ${join(work, 'index.txt')}\n` +
        (number === null ? '' : `crlnumber = ${join(work, 'crlnumber')}\n`) +
        // P-384 signs with SHA-384, as provisioning's root would (RFC 5758 §3.2).
        `default_md = ${params.signer === 'root' ? 'sha384' : 'sha256'}\n`,
    );
    const signer = params.signer ?? 'intermediate';
    this.openssl('ca', '-gencrl', '-config', join(work, 'ca.cnf'), '-crlexts', params.extensions ?? 'crl_plain',
      '-cert', `${signer}.pem`, '-keyfile', `${signer}.key`, '-crlhours', String(params.hours ?? 24), '-out', join(work, 'crl.pem'));
    this.openssl('crl', '-in', join(work, 'crl.pem'), '-outform', 'DER', '-out', join(work, 'crl.der'));
    return readFileSync(join(work, 'crl.der'));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private key(name: string, curve: string): void {
    this.openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', `${name}.key`);
  }

  private issue(name: string, issuer: string, section: string, subject: string, days = 2, digest?: string): void {
    this.key(name, 'P-256');
    this.openssl('req', '-new', '-config', 'ca.cnf', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
    this.openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial',
      '-days', String(days), '-extfile', 'ca.cnf', '-extensions', section, ...(digest ? [`-${digest}`] : []), '-out', `${name}.pem`);
  }

  private read(file: string): string {
    return readFileSync(join(this.dir, file), 'utf8');
  }

  private openssl(...args: string[]): void {
    const r = spawnSync('openssl', args, { cwd: this.dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  }
}

function evenHex(hex: string): string {
  const h = hex.toUpperCase();
  return h.length % 2 === 0 ? h : `0${h}`;
}
