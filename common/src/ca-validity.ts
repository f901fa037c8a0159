import type { X509Certificate } from 'node:crypto';
import { pemX509Certificates } from './pem.js';

/** One CA certificate's end of validity, for the CA expiry gauges. */
export interface CaValidity {
  /** `root` when self-issued (subject = issuer, RFC 5280 §3.2), else `intermediate`. */
  readonly ca: 'root' | 'intermediate';
  /** The subject's commonName, or the whole subject when it has none. */
  readonly subject: string;
  /** Serial number, lower-case hex: tells two CAs of one name apart (during a rotation). */
  readonly serial: string;
  /** notAfter, ms since the epoch. */
  readonly notAfterMs: number;
}

/** The CA certificates among the PEM texts given, each once (by fingerprint), leaf certificates skipped. */
export function caValidity(...pems: string[]): CaValidity[] {
  return caValidityOf(pems.flatMap((pem) => pemX509Certificates(pem)));
}

/** caValidity of certificates already parsed (a trust bundle in force). */
export function caValidityOf(certs: readonly X509Certificate[]): CaValidity[] {
  const seen = new Set<string>();
  const out: CaValidity[] = [];
  for (const cert of certs) {
    if (!cert.ca || seen.has(cert.fingerprint256)) continue;
    seen.add(cert.fingerprint256);
    const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1];
    out.push({ ca: cert.subject === cert.issuer ? 'root' : 'intermediate', subject: cn ?? cert.subject.replace(/\n/g, ', '), serial: cert.serialNumber.toLowerCase(), notAfterMs: Date.parse(cert.validTo) });
  }
  return out;
}
