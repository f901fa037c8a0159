import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifyPeer, subjectKeyId, type PeerCertificate } from '@tlsfleet/common';
import { OpensslPki } from '../revocation/openssl-crl.fixture.js';
import { issuedByPinnedIssuer, pinnedIssuers } from './issuer-pinning.js';

describe('issuer pinning (a leaf\'s AKI must name a CA of the current trust bundle)', () => {
  let pki: OpensslPki;
  let root: X509Certificate;
  let intermediate: X509Certificate;
  const cert = (pem: string) => new X509Certificate(pem);
  const peerOf = (pem: string): PeerCertificate => {
    const peer = identifyPeer(cert(pem), 'tlsfleet.local');
    if (typeof peer === 'string') throw new Error(`fixture leaf outside the profile: ${peer}`);
    return peer;
  };

  beforeAll(() => {
    pki = OpensslPki.create();
    root = cert(pki.pem('root'));
    intermediate = cert(pki.pem('intermediate'));
  });
  afterAll(() => pki?.remove());

  it('pins the SKIs of the bundle\'s CA certificates, and not of a leaf in it', () => {
    const pins = pinnedIssuers([root, intermediate, cert(pki.pem('server'))]);
    expect([...pins.keyIds].sort()).toEqual([subjectKeyId(root.raw), subjectKeyId(intermediate.raw)].sort());
    expect(pins.withoutKeyId).toEqual([]);
  });

  it('accepts a leaf of the bundle\'s intermediate, and refuses it once the intermediate left the bundle', () => {
    const leaf = peerOf(pki.clientLeaf('pinned', 'intermediate'));
    expect(issuedByPinnedIssuer(leaf, pinnedIssuers([root, intermediate]).keyIds)).toBe(true);
    expect(issuedByPinnedIssuer(leaf, pinnedIssuers([root]).keyIds)).toBe(false);
  });

  it('refuses a leaf of an impostor CA with the intermediate\'s exact subject but its own key', () => {
    const leaf = peerOf(pki.clientLeaf('impostored', 'impostor'));
    expect(issuedByPinnedIssuer(leaf, pinnedIssuers([root, intermediate]).keyIds)).toBe(false);
  });

  it('refuses a leaf without an Authority Key Identifier', () => {
    const leaf: PeerCertificate = { ...peerOf(pki.clientLeaf('no-aki', 'intermediate')), authorityKeyId: undefined };
    expect(issuedByPinnedIssuer(leaf, pinnedIssuers([root, intermediate]).keyIds)).toBe(false);
  });
});
