import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derToPem, TlsfleetError } from '@tlsfleet/common';
import { decodeEstCsrBody } from './request-body.js';

const MAX = 64 * 1024;
let dir: string;
let csr: Buffer;
let b64: string;

function wrap(text: string, width: number, eol: string): string {
  return (text.match(new RegExp(`.{1,${width}}`, 'g')) ?? []).join(eol);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof TlsfleetError ? error.code : `not a TlsfleetError: ${String(error)}`;
  }
  return undefined;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlsfleet-est-body-'));
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=device-1', '-keyout', 'device.key', '-outform', 'DER', '-out', 'device.csr'], { cwd: dir, stdio: 'ignore' });
  csr = await readFile(join(dir, 'device.csr'));
  b64 = csr.toString('base64');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('decodeEstCsrBody accepts', () => {
  const cases: [string, () => string][] = [
    ['base64 on one line', () => b64],
    ['base64 with a trailing newline', () => `${b64}\n`],
    ['base64 with a trailing CRLF', () => `${b64}\r\n`],
    ['64-character LF lines with a trailing LF, as libest sends', () => `${wrap(b64, 64, '\n')}\n`],
    ['76-character CRLF lines (Content-Transfer-Encoding: base64)', () => wrap(b64, 76, '\r\n')],
    ['lines indented with spaces and tabs', () => wrap(b64, 40, '\n \t')],
    ['a PEM CERTIFICATE REQUEST', () => derToPem(csr, 'CERTIFICATE REQUEST')],
    ['a PEM NEW CERTIFICATE REQUEST', () => derToPem(csr, 'NEW CERTIFICATE REQUEST')],
    ['a PEM with CRLF line ends and text around it', () => `csr:\r\n${derToPem(csr, 'CERTIFICATE REQUEST').replaceAll('\n', '\r\n')}bye\r\n`],
  ];

  it.each(cases)('%s, as a string', (_name, body) => {
    expect(decodeEstCsrBody(body(), MAX)).toEqual(csr);
  });

  it.each(cases)('%s, as a Buffer', (_name, body) => {
    expect(decodeEstCsrBody(Buffer.from(body()), MAX)).toEqual(csr);
  });

  it('returns DER that openssl reads as a CSR with a valid signature', () => {
    const der = decodeEstCsrBody(`${wrap(b64, 64, '\n')}\n`, MAX);
    const out = execFileSync('openssl', ['req', '-inform', 'DER', '-noout', '-verify', '-subject'], { input: der, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    expect(out).toContain('CN = device-1');
  });
});

describe('decodeEstCsrBody refuses', () => {
  it.each<[string, () => string | Buffer]>([
    ['an empty body', () => ''],
    ['a body of whitespace', () => ' \r\n'],
    ['raw DER', () => csr],
    ['base64url', () => b64.replaceAll('+', '-').replaceAll('/', '_') + '-_'],
    ['base64 missing its padding', () => b64.replace(/=+$/, '') + (b64.endsWith('=') ? '' : 'A')],
    ['base64 with a character in the middle that is not base64', () => `${b64.slice(0, 10)}*${b64.slice(10)}`],
    ['base64 with a form feed', () => `${b64.slice(0, 12)}\f${b64.slice(12)}`],
    ['a PEM certificate instead of a request', () => derToPem(csr, 'CERTIFICATE')],
    ['two PEM requests', () => derToPem(csr, 'CERTIFICATE REQUEST').repeat(2)],
    ['a PEM request whose base64 is broken', () => derToPem(csr, 'CERTIFICATE REQUEST').replace('M', '!')],
  ])('%s with invalid_csr', (_name, body) => {
    expect(codeOf(() => decodeEstCsrBody(body(), MAX))).toBe('invalid_csr');
  });

  it('a body over maxBytes with payload_too_large, before looking at it', () => {
    expect(codeOf(() => decodeEstCsrBody(b64, b64.length - 1))).toBe('payload_too_large');
    expect(codeOf(() => decodeEstCsrBody(Buffer.alloc(101, 0), 100))).toBe('payload_too_large');
    expect(decodeEstCsrBody(b64, b64.length)).toEqual(csr);
  });

  it('counts the bytes of a string body, not its characters', () => {
    expect(codeOf(() => decodeEstCsrBody('é'.repeat(60), 100))).toBe('payload_too_large');
  });
});
