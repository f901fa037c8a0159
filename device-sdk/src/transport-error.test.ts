import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transportError } from './transport-error.js';

let dir: string;
let server: Server;
let port: number;
let cert: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tlsfleet-transport-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-subj', '/CN=elsewhere', '-days', '1', '-addext', 'subjectAltName=DNS:elsewhere.test'], { cwd: dir, stdio: 'pipe' });
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  server = createServer({ cert, key: readFileSync(join(dir, 'key.pem'), 'utf8') }, (s) => s.end());
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** The error Node gives for a real TLS connection to our server. */
function failure(opts: { ca?: string; servername?: string }): Promise<Error> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...opts }, () => reject(new Error('connected')));
    socket.once('error', resolve);
  });
}

describe('transportError', () => {
  it('a certificate from a CA we do not trust is tls_verification_failed with the OpenSSL reason', async () => {
    const err = transportError(await failure({}), 'the broker mqtts://127.0.0.1');
    expect(err).toMatchObject({ code: 'tls_verification_failed', configuration: true, retryable: false });
    expect(err!.systemCode).toMatch(/SELF_SIGNED|UNABLE_TO/);
    expect(err!.message).toMatch(/the broker mqtts:\/\/127\.0\.0\.1/);
  });

  it('a trusted certificate for another host name is tls_verification_failed (ERR_TLS_CERT_ALTNAME_INVALID)', async () => {
    const err = transportError(await failure({ ca: cert }), 'the broker mqtts://127.0.0.1');
    expect(err).toMatchObject({ code: 'tls_verification_failed', systemCode: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(err!.message).toMatch(/does not name this host/);
  });

  it.each([
    [{ code: 'ENOTFOUND', hostname: 'x.example' }, { code: 'host_not_found', retryable: false, configuration: true }],
    [{ code: 'EAI_AGAIN', hostname: 'x.example' }, { code: 'host_not_found', retryable: true, configuration: false }],
    [{ code: 'EAI_AGAIN', hostname: 'broker.invalid' }, { code: 'host_not_found', retryable: false, configuration: true }],
    [{ code: 'ECONNREFUSED' }, { code: 'connection_refused', retryable: true, configuration: true }],
    [{ errors: [{ code: 'ECONNREFUSED' }, { code: 'ECONNREFUSED' }] }, { code: 'connection_refused' }],
  ])('%o → %o', (raw, expected) => {
    expect(transportError(Object.assign(new Error('x'), raw), 'the service')).toMatchObject(expected);
  });

  it.each(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ERR_SSL_TLSV1_ALERT_BAD_CERTIFICATE'])('%s stays plain network trouble (undefined)', (code) => {
    expect(transportError(Object.assign(new Error('x'), { code }), 'the service')).toBeUndefined();
  });
});
