import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pemBlocks, subjectKeyId } from '@tlsfleet/common';
import { OpensslPki } from '../revocation/openssl-crl.fixture.js';
import { TrustAnchors } from './trust-anchors.js';

const cert = (pem: string) => new X509Certificate(pem);
const keyIdOf = (pem: string) => subjectKeyId(cert(pem).raw)!;

/** What a TLS server with `ca` and a client certificate required makes of `leaf` (signed by `issuer`). */
async function handshake(ca: string, pki: OpensslPki, leaf: string, issuer: string): Promise<'accepted' | string> {
  const server = createServer({ ...pki.serverCredentials(), ca, requestCert: true, rejectUnauthorized: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const outcome = new Promise<string>((resolve) => {
      server.once('secureConnection', (socket: TLSSocket) => {
        resolve('accepted');
        socket.destroy();
      });
      server.once('tlsClientError', (_err, socket: TLSSocket) => resolve(String((socket.authorizationError as { code?: string } | null)?.code ?? 'refused')));
    });
    const port = (server.address() as { port: number }).port;
    const chain = pki.clientLeaf(leaf, issuer) + pki.pem(issuer);
    const client = connect({ port, host: '127.0.0.1', key: pki.privateKeyPem(leaf), cert: chain, ca: pki.bundlePem });
    client.on('error', () => {});
    try {
      return await outcome;
    } finally {
      client.destroy();
    }
  } finally {
    server.close();
  }
}

describe('TrustAnchors (intermediates OpenSSL trusts directly, once their root signature is checked)', () => {
  let pki: OpensslPki;
  let root: string;
  let intermediate: string;

  beforeAll(() => {
    pki = OpensslPki.create();
    root = pki.pem('root');
    intermediate = pki.pem('intermediate');
  });
  afterAll(() => pki?.remove());

  it('hands the intermediate to TLS as a TRUSTED CERTIFICATE for client authentication, and the root unchanged', () => {
    const anchors = TrustAnchors.of([cert(root), cert(intermediate)]);
    const blocks = pemBlocks(anchors.caPem);
    expect(blocks.map((b) => b.label)).toEqual(['CERTIFICATE', 'TRUSTED CERTIFICATE']);
    expect(blocks[0]!.der.equals(cert(root).raw)).toBe(true);
    expect(anchors.anchored).toBe(1);
    // The real openssl reads the block as the intermediate plus its trust settings.
    const text = spawnSync('openssl', ['x509', '-noout', '-subject', '-text'], { input: anchors.caPem.slice(anchors.caPem.indexOf('-----BEGIN TRUSTED')), encoding: 'utf8' });
    expect(text.status).toBe(0);
    expect(text.stdout).toContain('CN = tlsfleet intermediate CA');
    expect(text.stdout).toMatch(/Trusted Uses:\s*\n\s*TLS Web Client Authentication/);
  });

  it('makes OpenSSL end the chain at the anchored intermediate: accepted without the root, where the plain intermediate is not', async () => {
    const anchoredOnly = TrustAnchors.of([cert(root), cert(intermediate)]).caPem;
    const trustedBlock = anchoredOnly.slice(anchoredOnly.indexOf('-----BEGIN TRUSTED'));
    expect(await handshake(trustedBlock, pki, 'via-anchor', 'intermediate')).toBe('accepted');
    expect(await handshake(intermediate, pki, 'via-plain', 'intermediate')).not.toBe('accepted');
  });

  it('still refuses, with the anchors, a leaf of an impostor that carries the intermediate\'s exact subject', async () => {
    const anchors = TrustAnchors.of([cert(root), cert(intermediate)]);
    expect(await handshake(anchors.caPem, pki, 'genuine', 'intermediate')).toBe('accepted');
    expect(await handshake(anchors.caPem, pki, 'impostored', 'impostor')).not.toBe('accepted');
  });

  it('reports the validity OpenSSL no longer checks: the intermediate\'s, and the root\'s folded in', () => {
    // Issued for 5 days under a 2-day root (OpenSSL allows it): the root ends the path first.
    const long = pki.extraIntermediate('long-lived', 'root', 5);
    const anchors = TrustAnchors.of([cert(root), cert(long)]);
    const ski = keyIdOf(long);
    const rootEnds = Date.parse(cert(root).validTo);
    const starts = Date.parse(cert(long).validFrom);
    expect(Date.parse(cert(long).validTo)).toBeGreaterThan(rootEnds);
    expect(anchors.fault(ski, starts)).toBeUndefined();
    expect(anchors.fault(ski, rootEnds)).toBeUndefined();
    expect(anchors.fault(ski, rootEnds + 1000)).toBe('expired');
    expect(anchors.fault(ski, starts - 1000)).toBe('not_yet_valid');
  });

  it('leaves alone a leaf whose issuer is no anchor: OpenSSL verified that whole chain itself', () => {
    const anchors = TrustAnchors.of([cert(root), cert(intermediate)]);
    const farFuture = Date.parse(cert(root).validTo) + 365 * 86_400_000;
    expect(anchors.fault(keyIdOf(root), farFuture)).toBeUndefined();
    expect(anchors.fault('00'.repeat(20), farFuture)).toBeUndefined();
    expect(anchors.fault(undefined, farFuture)).toBeUndefined();
    expect(anchors.fault(keyIdOf(intermediate), farFuture)).toBe('expired');
  });

  it('accepts any of several paths for one key: a re-issued intermediate beside its expired copy', () => {
    const short = pki.extraIntermediate('short', 'root', 1);
    const anchors = TrustAnchors.of([cert(root), cert(short), cert(intermediate)]);
    expect(anchors.anchored).toBe(2);
    const shortEnds = Date.parse(cert(short).validTo);
    expect(anchors.fault(keyIdOf(short), shortEnds + 1000)).toBe('expired');
    expect(anchors.fault(keyIdOf(intermediate), shortEnds + 1000)).toBeUndefined();
  });

  it.each([
    ['a root with pathLen 0 (the full chain is invalid)', 'root_pathlen0'],
    ['a root with name constraints', 'root_named'],
    ['a root with a critical extension OpenSSL does not know', 'root_unknown_critical'],
  ])('anchors no intermediate under %s: TLS verifies that chain in full', (_what, section) => {
    const other = pki.extraRoot(`root-${section}`, section);
    const below = pki.extraIntermediate(`below-${section}`, `root-${section}`);
    const anchors = TrustAnchors.of([cert(other), cert(below)]);
    expect(anchors.anchored).toBe(0);
    expect(pemBlocks(anchors.caPem).map((b) => b.label)).toEqual(['CERTIFICATE', 'CERTIFICATE']);
  });

  it('anchors no intermediate whose root is not in the bundle, nor one the root signed with SHA-1', () => {
    expect(TrustAnchors.of([cert(intermediate)]).anchored).toBe(0);
    const sha1 = pki.extraIntermediate('sha1-signed', 'root', 2, 'sha1');
    expect(TrustAnchors.of([cert(root), cert(sha1)]).anchored).toBe(0);
  });

  it('anchors no impostor: a self-signed certificate with the intermediate\'s subject is a root, and signs nothing in the bundle', () => {
    const anchors = TrustAnchors.of([cert(root), cert(pki.pem('impostor'))]);
    expect(anchors.anchored).toBe(0);
  });
});
