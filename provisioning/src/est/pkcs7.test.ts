import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derToPem, pemBlocks } from '@tlsfleet/common';
import { base64Body, certsOnlyPkcs7 } from './pkcs7.js';

let dir: string;
let certs: Buffer[];

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function selfSigned(name: string, keyAlgorithm: string[]): Promise<Buffer> {
  openssl('req', '-x509', '-newkey', ...keyAlgorithm, '-nodes', '-subj', `/CN=${name}`, '-days', '1',
    '-keyout', `${name}.key`, '-outform', 'DER', '-out', `${name}.der`);
  return readFile(join(dir, `${name}.der`));
}

function printedCerts(args: string[]): Buffer[] {
  return pemBlocks(openssl('pkcs7', ...args, '-print_certs')).map((block) => block.der);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlsfleet-pkcs7-'));
  // Different key types, so each certificate's own encoding must survive the round trip.
  certs = [
    await selfSigned('leaf', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']),
    await selfSigned('intermediate', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384']),
    await selfSigned('root', ['rsa:2048']),
  ];
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('certsOnlyPkcs7', () => {
  it('lists exactly the given certificates, in order, byte for byte (DER)', async () => {
    await writeFile(join(dir, 'p7.der'), certsOnlyPkcs7(certs));
    expect(printedCerts(['-inform', 'DER', '-in', 'p7.der'])).toEqual(certs);
  });

  it('keeps the order it is given rather than sorting the SET', async () => {
    const reversed = [...certs].reverse();
    await writeFile(join(dir, 'reversed.der'), certsOnlyPkcs7(reversed));
    expect(printedCerts(['-inform', 'DER', '-in', 'reversed.der'])).toEqual(reversed);
  });

  it('is a degenerate SignedData: version 1, id-data without content, no digest algorithms or signers', async () => {
    await writeFile(join(dir, 'structure.der'), certsOnlyPkcs7(certs.slice(0, 1)));
    const printed = openssl('cms', '-cmsout', '-print', '-inform', 'DER', '-in', 'structure.der');
    expect(printed).toContain('contentType: pkcs7-signedData');
    expect(printed).toMatch(/version: 1\n\s+digestAlgorithms:\n\s+<EMPTY>/);
    expect(printed).toMatch(/eContentType: pkcs7-data \(1\.2\.840\.113549\.1\.7\.1\)\n\s+eContent: <ABSENT>/);
    expect(printed).toMatch(/signerInfos:\n\s+<EMPTY>/);
  });

  it('matches what openssl crl2pkcs7 -nocrl builds from the same certificates', async () => {
    await writeFile(join(dir, 'chain.pem'), certs.map((der) => derToPem(der, 'CERTIFICATE')).join(''));
    openssl('crl2pkcs7', '-nocrl', '-certfile', 'chain.pem', '-outform', 'DER', '-out', 'reference.der');
    expect(certsOnlyPkcs7(certs)).toEqual(await readFile(join(dir, 'reference.der')));
  });
});

describe('base64Body', () => {
  it('wraps at 64 characters with LF, the last line included', () => {
    const body = base64Body(certsOnlyPkcs7(certs));
    expect(body.endsWith('\n')).toBe(true);
    expect(body).not.toContain('\r');
    const lines = body.split('\n').slice(0, -1);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(0, -1).every((line) => line.length === 64)).toBe(true);
    expect(lines.every((line) => /^[A-Za-z0-9+/=]{1,64}$/.test(line))).toBe(true);
  });

  it('decodes with GNU base64 -d, as shell recipes do, back to the same DER', async () => {
    const der = certsOnlyPkcs7(certs);
    await writeFile(join(dir, 'gnu.b64'), base64Body(der));
    expect(execFileSync('base64', ['-d', join(dir, 'gnu.b64')])).toEqual(der);
  });

  it('decodes with OpenSSL base64, as libest does, back to the same DER', async () => {
    const der = certsOnlyPkcs7(certs);
    await writeFile(join(dir, 'body.b64'), base64Body(der));
    execFileSync('openssl', ['base64', '-d', '-in', 'body.b64', '-out', 'body.der'], { cwd: dir });
    expect(await readFile(join(dir, 'body.der'))).toEqual(der);
  });

  it('reads as a PKCS7 PEM once wrapped, listing the certificates in order', async () => {
    const pem = `-----BEGIN PKCS7-----\n${base64Body(certsOnlyPkcs7(certs))}-----END PKCS7-----\n`;
    await writeFile(join(dir, 'p7.pem'), pem);
    expect(printedCerts(['-inform', 'PEM', '-in', 'p7.pem'])).toEqual(certs);
  });

  it('gives nothing for nothing', () => {
    expect(base64Body(Buffer.alloc(0))).toBe('');
  });
});
