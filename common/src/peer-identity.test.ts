import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpensslTestCa } from './openssl-test-ca.fixture.js';
import { subjectKeyId } from './key-identifiers.js';
import { identifyPeer, identifyTlsPeer } from './peer-identity.js';

const TD = 'fleet.test';
let ca: OpensslTestCa;
const leaf = (name: string, extensions: string[] | undefined) => ca.leaf(name, extensions);

const GOOD = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', `subjectAltName=URI:spiffe://${TD}/device/d1`];

const cases: [string, string[] | undefined, string | { name: string; kind: string }][] = [
  ['a certificate with the tlsfleet profile', GOOD, { name: 'd1', kind: 'device' }],
  ['a service identity', GOOD.map((e) => e.replace('/device/d1', '/service/ingest')), { name: 'ingest', kind: 'service' }],
  ['an X.509 v1 certificate (no extensions at all)', undefined, 'no_client_auth'],
  ['a leaf without an extendedKeyUsage', GOOD.filter((e) => !e.startsWith('extendedKeyUsage')), 'no_client_auth'],
  // TLS itself refuses this one (OpenSSL's ssl_client purpose check): see the test below.
  // OpenSSL (X509_check_ca, behind both paths) counts CA:TRUE as a CA only with keyCertSign.
  ['a CA certificate with clientAuth', GOOD.map((e) => e.replace('CA:FALSE', 'CA:TRUE').replace('critical,digitalSignature', 'critical,digitalSignature,keyCertSign')), 'is_ca'],
  ['two URI SANs', GOOD.map((e) => (e.startsWith('subjectAltName') ? `${e},URI:spiffe://${TD}/device/d2` : e)), 'uri_san_count'],
  ['no URI SAN, only a DNS name', GOOD.map((e) => (e.startsWith('subjectAltName') ? 'subjectAltName=DNS:d1.example' : e)), 'uri_san_count'],
  ['another trust domain', GOOD.map((e) => e.replace(TD, 'other.test')), 'bad_identity'],
  ['an admin identity is parsed, and left to callers to refuse', GOOD.map((e) => e.replace('/device/d1', '/admin/ops')), { name: 'ops', kind: 'admin' }],
  ['a device id with a topic wildcard', GOOD.map((e) => e.replace('/device/d1', '/device/d+1')), 'bad_identity'],
];

beforeAll(() => {
  ca = new OpensslTestCa();
});
afterAll(() => ca.remove());

/** What a real TLS server that trusts the CA sees of a client presenting `cert`. */
async function peerSeenOverTls(cert: string, key: string) {
  const server = createServer({ key: ca.read('server.key'), cert: ca.read('server.pem'), ca: ca.read('ca.pem'), requestCert: true, rejectUnauthorized: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const outcome = new Promise<TLSSocket | 'refused by TLS'>((resolve) => {
    server.once('secureConnection', resolve);
    server.once('tlsClientError', () => resolve('refused by TLS'));
  });
  const client = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', cert, key, rejectUnauthorized: false });
  client.on('error', () => undefined);
  const socket = await outcome;
  client.destroy();
  server.close();
  if (socket === 'refused by TLS') return socket;
  return { authorized: socket.authorized, details: socket.getPeerCertificate() };
}

describe('identifyPeer and identifyTlsPeer', () => {
  it('refuse a serverAuth-only leaf, which the TLS layer already refuses', async () => {
    const { cert, key } = leaf('server-only', GOOD.map((e) => e.replace('clientAuth', 'serverAuth')));
    expect(identifyPeer(new X509Certificate(cert), TD)).toBe('no_client_auth');
    expect(await peerSeenOverTls(cert, key)).toBe('refused by TLS');
  });

  it.each(cases)('judge %s the same way', async (_name, extensions, expected) => {
    const { cert, key } = leaf(`leaf${Math.random().toString(36).slice(2, 8)}`, extensions);
    const fromX509 = identifyPeer(new X509Certificate(cert), TD);
    const seen = await peerSeenOverTls(cert, key);
    if (seen === 'refused by TLS') throw new Error('expected the TLS layer to accept this chain');
    // Node's TLS verified the chain: the profile is ours to check.
    expect(seen.authorized).toBe(true);
    const fromTls = identifyTlsPeer(seen.details, TD);
    for (const got of [fromX509, fromTls]) {
      if (typeof expected === 'string') expect(got).toBe(expected);
      else {
        expect(typeof got).toBe('object');
        if (typeof got === 'object') {
          expect(got.identity).toEqual({ ...expected, trustDomain: TD });
          expect(got.serial).toBe(new X509Certificate(cert).serialNumber.toLowerCase().replace(/^0+/, ''));
          expect(got.spkiDer.equals(new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
          // openssl adds AKI keyid by default: the CA's SKI, read from the DER each path kept.
          expect(got.authorityKeyId).toMatch(/^[0-9a-f]{40}$/);
          expect(got.authorityKeyId).toBe(subjectKeyId(new X509Certificate(ca.read('ca.pem')).raw));
        }
      }
    }
  });
});
