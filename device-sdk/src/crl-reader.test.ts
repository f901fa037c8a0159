import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeSerialHex } from '@tlsfleet/common';
import { readCrl } from './crl-reader.js';

// CRLs made by `openssl ca -gencrl`, not by our own service: the reader follows RFC 5280 §5.1, not our writer.
let dir: string;
const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

function makeCa(name: string): void {
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  run('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '1', '-out', `${name}.pem`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

function leaf(name: string): X509Certificate {
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  run('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
  run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', `${name}.pem`);
  return new X509Certificate(readFileSync(join(dir, `${name}.pem`)));
}

function crlDer(): Buffer {
  run('ca', '-config', 'ca.cnf', '-gencrl', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-out', 'crl.pem');
  return run('crl', '-in', 'crl.pem', '-outform', 'DER');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tlsfleet-crl-'));
  writeFileSync(join(dir, 'ca.cnf'), '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 1\n');
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  makeCa('ca');
  makeCa('other');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readCrl', () => {
  it('an empty CRL lists nothing and verifies with its issuer key only', () => {
    const crl = readCrl(crlDer());
    expect(crl.revokedSerials.size).toBe(0);
    expect(crl.signedBy(new X509Certificate(readFileSync(join(dir, 'ca.pem'))).publicKey)).toBe(true);
    expect(crl.signedBy(new X509Certificate(readFileSync(join(dir, 'other.pem'))).publicKey)).toBe(false);
  });

  it('lists a revoked serial, however the serial is written, and not a live one', () => {
    const revoked = leaf('revoked');
    const live = leaf('live');
    run('ca', '-config', 'ca.cnf', '-revoke', 'revoked.pem', '-keyfile', 'ca.key', '-cert', 'ca.pem');
    const crl = readCrl(crlDer());
    expect(crl.revokedSerials.has(normalizeSerialHex(revoked.serialNumber))).toBe(true);
    expect(crl.revokedSerials.has(normalizeSerialHex(`00${revoked.serialNumber.toUpperCase()}`))).toBe(true);
    expect(crl.revokedSerials.has(normalizeSerialHex(live.serialNumber))).toBe(false);
  });

  it('a CRL altered after signing no longer verifies', () => {
    const der = Buffer.from(crlDer());
    const at = der.indexOf(Buffer.from('ca'), 20); // a byte of the issuer name inside tbsCertList
    der[at] = 'x'.charCodeAt(0);
    expect(readCrl(der).signedBy(new X509Certificate(readFileSync(join(dir, 'ca.pem'))).publicKey)).toBe(false);
  });

  it.each([
    ['not DER', Buffer.from('hello')],
    ['a certificate', () => run('x509', '-in', 'ca.pem', '-outform', 'DER')],
    ['trailing bytes', () => Buffer.concat([crlDer(), Buffer.from([0])])],
  ])('refuses %s', (_name, input) => {
    const der = typeof input === 'function' ? input() : input;
    expect(() => readCrl(der)).toThrow();
  });
});
