import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  /** What `openssl verify` says of `leaf` with `root` trusted and `chain` offered, as a TLS server given that bundle would. */
  const opensslAccepts = (rootPem: string, chainPems: readonly string[], leafPem: string): boolean => {
    const dir = mkdtempSync(join(tmpdir(), 'tlsfleet-verify-'));
    try {
      writeFileSync(join(dir, 'root.pem'), rootPem);
      writeFileSync(join(dir, 'chain.pem'), chainPems.join(''));
      writeFileSync(join(dir, 'leaf.pem'), leafPem);
      const untrusted = chainPems.length ? ['-untrusted', join(dir, 'chain.pem')] : [];
      return spawnSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'root.pem'), ...untrusted, join(dir, 'leaf.pem')]).status === 0;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('accepts a path that openssl verify accepts (the control for the refusals below)', () => {
    const leafPem = pki.clientLeaf('control', 'intermediate');
    expect(opensslAccepts(pki.pem('root'), [pki.pem('intermediate')], leafPem)).toBe(true);
    expect(new TrustBundleVerifier([root, intermediate]).verify(cert(leafPem), now())).toBeUndefined();
  });

  /** A root of `section`, an intermediate under it and a client leaf (spiffe://tlsfleet.local/device/d1) under that. */
  const underRoot = (section: string) => {
    const rootPem = pki.extraRoot(`fwd-root-${section}`, section);
    const below = pki.extraIntermediate(`fwd-below-${section}`, `fwd-root-${section}`);
    const leafPem = pki.clientLeaf(`fwd-leaf-${section}`, `fwd-below-${section}`);
    return { rootPem, below, leafPem, verifier: new TrustBundleVerifier([cert(rootPem), cert(below)]) };
  };

  const refusedByBoth: [string, string][] = [
    ['pathLen 0 (no intermediate may follow it)', 'root_pathlen0'],
    ['URI name constraints permitting only hosts below tlsfleet.local', 'root_named'],
    ['URI name constraints excluding tlsfleet.local', 'root_named_excluded'],
    ['a critical extension no verifier here knows', 'root_unknown_critical'],
  ];
  it.each(refusedByBoth)('refuses a path through a root with %s, as openssl verify does', (_name, section) => {
    const { rootPem, below, leafPem, verifier } = underRoot(section);
    expect(opensslAccepts(rootPem, [below], leafPem)).toBe(false);
    expect(verifier.verify(cert(leafPem), now())).toBe('unknown_ca');
  });

  it('accepts a path through a root whose URI name constraints permit the leaf\'s trust domain, as openssl verify does', () => {
    const { rootPem, below, leafPem, verifier } = underRoot('root_named_host');
    expect(opensslAccepts(rootPem, [below], leafPem)).toBe(true);
    expect(verifier.verify(cert(leafPem), now())).toBeUndefined();
    expect(verifier.constrainedCas()).toEqual([]);
  });

  it('refuses a path through a CA with name constraints on another name form, which it does not evaluate (fails closed)', () => {
    const { leafPem, verifier } = underRoot('root_named_dns');
    expect(verifier.verify(cert(leafPem), now())).toBe('unknown_ca');
    expect(verifier.constrainedCas()).toEqual([cert(pki.pem('fwd-root-root_named_dns')).subject]);
  });

  it('refuses a path longer than an intermediate\'s pathLen allows, as openssl verify does', () => {
    // The fixture's intermediate has pathLen 0: a CA below it may not issue leaves.
    const sub = pki.extraIntermediate('fwd-sub', 'intermediate');
    const leafPem = pki.clientLeaf('fwd-deep', 'fwd-sub');
    expect(opensslAccepts(pki.pem('root'), [pki.pem('intermediate'), sub], leafPem)).toBe(false);
    expect(new TrustBundleVerifier([root, intermediate, cert(sub)]).verify(cert(leafPem), now())).toBe('unknown_ca');
    // The same sub-CA directly under the root (no pathLen) is a valid three-CA path.
    const direct = pki.extraIntermediate('fwd-direct', 'root');
    const leaf2Pem = pki.clientLeaf('fwd-shallow', 'fwd-direct');
    expect(opensslAccepts(pki.pem('root'), [direct], leaf2Pem)).toBe(true);
    expect(new TrustBundleVerifier([root, cert(direct)]).verify(cert(leaf2Pem), now())).toBeUndefined();
  });

  it('names the CAs whose paths it refuses for their constraints, for the operator\'s log', () => {
    const otherRoot = cert(pki.extraRoot('fwd-root-listed', 'root_unknown_critical'));
    const verifier = new TrustBundleVerifier([root, intermediate, otherRoot]);
    expect(verifier.constrainedCas()).toEqual([otherRoot.subject]);
    verifier.replace([root, intermediate]);
    expect(verifier.constrainedCas()).toEqual([]);
  });
});
