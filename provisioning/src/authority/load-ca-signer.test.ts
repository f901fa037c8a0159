import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import * as x509 from '@peculiar/x509';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCaSigner } from './load-ca-signer.js';
import { OPENSSL_CA_CONFIG } from './openssl-ca.fixture.js';

// Sections for the openssl CLI: a well-formed root and intermediate, and CA certificates
// each missing one thing loadCaSigner requires.
const OPENSSL_CNF = `${OPENSSL_CA_CONFIG}[end_entity]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
[non_critical_basic_constraints]
basicConstraints = CA:true
keyUsage = critical,keyCertSign
subjectKeyIdentifier = hash
[no_key_cert_sign]
basicConstraints = critical,CA:true
keyUsage = critical,digitalSignature,cRLSign
subjectKeyIdentifier = hash
[no_key_usage]
basicConstraints = critical,CA:true
subjectKeyIdentifier = hash
[no_subject_key_identifier]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign
subjectKeyIdentifier = none
`;

let dir: string;
let fileCount = 0;
let root: { certFile: string; keyFile: string };

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function keyFileFor(privateKey: KeyObject): string {
  const file = join(dir, `${fileCount++}.key`);
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return file;
}

/** A certificate for `privateKey` signed by the test root with the extensions of `section`; '' for no extensions (v1). */
function certificateFor(privateKey: KeyObject, section: string, subject = '/O=tlsfleet test/CN=Test Intermediate'): string {
  const keyFile = keyFileFor(privateKey);
  const csrFile = join(dir, `${fileCount++}.csr`);
  const certFile = join(dir, `${fileCount++}.pem`);
  openssl('req', '-new', '-config', 'openssl.cnf', '-key', keyFile, '-subj', subject, '-out', csrFile);
  const extensions = section ? ['-extfile', 'openssl.cnf', '-extensions', section] : [];
  openssl('x509', '-req', '-in', csrFile, '-CA', root.certFile, '-CAkey', root.keyFile, '-set_serial', '0x7e57', '-days', '2', ...extensions, '-out', certFile);
  return readFileSync(certFile, 'utf8');
}

const ecKey = (namedCurve: string): KeyObject => generateKeyPairSync('ec', { namedCurve }).privateKey;
const pem = (privateKey: KeyObject): string => privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlsfleet-load-ca-signer-'));
  writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CNF);
  root = { keyFile: keyFileFor(ecKey('secp384r1')), certFile: join(dir, 'root.pem') };
  openssl('req', '-x509', '-new', '-config', 'openssl.cnf', '-key', root.keyFile, '-subj', '/O=tlsfleet test/CN=Test Root', '-days', '2', '-extensions', 'root', '-out', root.certFile);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadCaSigner', () => {
  it('loads a P-256 intermediate with its key identifier and verbatim subject, frozen', () => {
    const key = ecKey('prime256v1');
    const certPem = certificateFor(key, 'intermediate');
    const signer = loadCaSigner(certPem, pem(key));
    const cert = new x509.X509Certificate(certPem);

    expect(signer.curve).toBe('P-256');
    expect(signer.certificateDer.equals(Buffer.from(cert.rawData))).toBe(true);
    expect(signer.keyIdentifier.toString('hex')).toBe(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    expect(new x509.Name(signer.subjectNameDer).toString()).toBe('O=tlsfleet test, CN=Test Intermediate');
    expect(signer.certificateDer.includes(signer.subjectNameDer)).toBe(true);
    expect(signer.privateKey.type).toBe('private');
    expect(Object.isFrozen(signer)).toBe(true);
  });

  it('takes the curve from the key: P-384', () => {
    const key = ecKey('secp384r1');
    expect(loadCaSigner(certificateFor(key, 'intermediate'), pem(key)).curve).toBe('P-384');
  });

  it('loads a self-signed root too', () => {
    expect(loadCaSigner(readFileSync(root.certFile, 'utf8'), readFileSync(root.keyFile, 'utf8')).curve).toBe('P-384');
  });

  const refusals: [string, () => [string, string], RegExp][] = [
    ['a key that is not the certificate key', () => [certificateFor(ecKey('prime256v1'), 'intermediate'), pem(ecKey('prime256v1'))], /does not match/],
    ['an end-entity certificate', () => withKey(ecKey('prime256v1'), 'end_entity'), /basicConstraints/],
    ['a non-critical basicConstraints', () => withKey(ecKey('prime256v1'), 'non_critical_basic_constraints'), /basicConstraints/],
    ['a CA without keyCertSign', () => withKey(ecKey('prime256v1'), 'no_key_cert_sign'), /keyCertSign/],
    ['a CA without keyUsage', () => withKey(ecKey('prime256v1'), 'no_key_usage'), /keyCertSign/],
    ['a CA without subjectKeyIdentifier', () => withKey(ecKey('prime256v1'), 'no_subject_key_identifier'), /subjectKeyIdentifier/],
    ['an X.509 v1 certificate', () => withKey(ecKey('prime256v1'), ''), /v3/],
    ['a P-521 CA key', () => withKey(ecKey('secp521r1'), 'intermediate'), /P-256 or P-384/],
    ['an RSA CA key', () => withKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'intermediate'), /P-256 or P-384/],
    ['two certificates in the PEM', () => { const [c, k] = withKey(ecKey('prime256v1'), 'intermediate'); return [c + readFileSync(root.certFile, 'utf8'), k]; }, /exactly one/],
    ['a key PEM that is not a key', () => [certificateFor(ecKey('prime256v1'), 'intermediate'), 'not a key'], /private key/],
  ];
  it.each(refusals)('refuses %s', (_name, make, message) => {
    const [certPem, keyPem] = make();
    expect(() => loadCaSigner(certPem, keyPem)).toThrow(message);
  });
});

function withKey(key: KeyObject, section: string): [string, string] {
  return [certificateFor(key, section), pem(key)];
}
