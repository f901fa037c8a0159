import { spawnSync } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';

/**
 * The trust bundle as the broker hands it to TLS (docs/internals/trust-anchors.md), made
 * here with openssl for mosquitto's `cafile`: each intermediate whose signature verifies
 * against a self-signed root of the bundle becomes a TRUSTED CERTIFICATE for clientAuth
 * (`openssl x509 -addtrust clientAuth -trustout`), so OpenSSL ends the chain there and
 * verifies only the leaf's signature per handshake. Roots go unchanged.
 */
export function anchoredBundlePem(bundle: readonly X509Certificate[]): string {
  const roots = bundle.filter((c) => c.ca && c.subject === c.issuer && c.verify(c.publicKey));
  return bundle
    .map((cert) => {
      const anchored = cert.ca && cert.subject !== cert.issuer && roots.some((root) => cert.checkIssued(root) && cert.verify(root.publicKey));
      return anchored ? addClientAuthTrust(cert.toString()) : cert.toString();
    })
    .join('');
}

function addClientAuthTrust(pem: string): string {
  const r = spawnSync('openssl', ['x509', '-addtrust', 'clientAuth', '-trustout'], { input: pem, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl x509 -addtrust failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}
