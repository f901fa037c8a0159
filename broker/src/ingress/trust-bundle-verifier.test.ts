import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpensslPki } from '../revocation/openssl-crl.fixture.js';
import { TrustBundleVerifier } from './trust-bundle-verifier.js';

describe('TrustBundleVerifier (forwarded certificates, re-verified outside TLS)', () => {
  let pki: OpensslPki;
  let root: X509Certificate;
  let intermediate: X509Certificate;
  let server: X509Certificate;
  const cert = (pem: string) => new X509Certificate(pem);

  beforeAll(() => {
    pki = OpensslPki.create();
    root = cert(pki.pem('root'));
    intermediate = cert(pki.pem('intermediate'));
    server = cert(pki.pem('server'));
  });
  afterAll(() => pki?.remove());

  const now = () => Date.now();

  it('accepts a leaf that the intermediate of the bundle signed, up to the self-signed root', () => {
    const leaf = cert(pki.clientLeaf('good', 'intermediate'));
    expect(new TrustBundleVerifier([root, intermediate]).verify(leaf, now())).toBeUndefined();
  });

  it('refuses the same leaf when the bundle lacks its issuer, or lacks the root above it', () => {
    const leaf = cert(pki.clientLeaf('orphan', 'intermediate'));
    expect(new TrustBundleVerifier([root]).verify(leaf, now())).toBe('unknown_ca');
    // No partial chains: the path must end at a self-signed certificate of the bundle, as in TLS.
    expect(new TrustBundleVerifier([intermediate]).verify(leaf, now())).toBe('unknown_ca');
  });

  it('refuses a leaf signed by an impostor with the intermediate\'s exact subject', () => {
    const leaf = cert(pki.clientLeaf('impostored', 'impostor'));
    expect(new TrustBundleVerifier([root, intermediate]).verify(leaf, now())).toBe('unknown_ca');
  });

  it('refuses a leaf signed by a CA:false certificate, even one that chains to the root and sits in the bundle', () => {
    const leaf = cert(pki.clientLeaf('by-server', 'server'));
    expect(new TrustBundleVerifier([root, intermediate, server]).verify(leaf, now())).toBe('unknown_ca');
  });

  it('refuses a leaf outside its validity period, and a path through an issuer outside its own', () => {
    // Issued for longer than its issuer (OpenSSL allows it; path validation must not).
    const leaf = cert(pki.clientLeaf('timed', 'intermediate', 5));
    const verifier = new TrustBundleVerifier([root, intermediate]);
    expect(verifier.verify(leaf, Date.parse(leaf.validTo) + 1000)).toBe('expired');
    expect(verifier.verify(leaf, Date.parse(leaf.validFrom) - 1000)).toBe('not_yet_valid');
    const atLeafEnd = Date.parse(leaf.validTo) - 1000;
    expect(atLeafEnd > Date.parse(intermediate.validTo)).toBe(true);
    expect(verifier.verify(leaf, atLeafEnd)).toBe('expired');
  });

  it('uses the bundle given to replace(), as on a trust-bundle reload', () => {
    const leaf = cert(pki.clientLeaf('reloaded', 'intermediate'));
    const verifier = new TrustBundleVerifier([root]);
    expect(verifier.verify(leaf, now())).toBe('unknown_ca');
    verifier.replace([root, intermediate]);
    expect(verifier.verify(leaf, now())).toBeUndefined();
    verifier.replace([cert(pki.pem('impostor'))]);
    expect(verifier.verify(leaf, now())).toBe('unknown_ca');
  });

  it('forgets on replace() what it learnt about the old bundle\'s CAs: a path once verified through a root that left is refused', () => {
    const leaf = cert(pki.clientLeaf('remembered', 'intermediate'));
    const verifier = new TrustBundleVerifier([root, intermediate]);
    expect(verifier.verify(leaf, now())).toBeUndefined();
    expect(verifier.verify(leaf, now())).toBeUndefined();
    verifier.replace([intermediate]);
    expect(verifier.verify(leaf, now())).toBe('unknown_ca');
    // The same objects again: nothing stale is kept from the bundle without the root.
    verifier.replace([root, intermediate]);
    expect(verifier.verify(leaf, now())).toBeUndefined();
  });

  it('still checks the validity of the CAs on a remembered path at every call', () => {
    const leaf = cert(pki.clientLeaf('timed-again', 'intermediate', 5));
    const verifier = new TrustBundleVerifier([root, intermediate]);
    expect(verifier.verify(leaf, now())).toBeUndefined();
    expect(verifier.verify(leaf, Date.parse(intermediate.validTo) + 1000)).toBe('expired');
  });
});
