import type { X509Certificate } from 'node:crypto';

/** `child` names `parent` as its issuer (names, AKI/SKI, keyCertSign) and `parent`'s key verifies its signature. */
export function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/** A CA certificate that issued and signed itself: a root. */
export function isSelfSigned(c: X509Certificate): boolean {
  return c.ca && issuedBy(c, c);
}
