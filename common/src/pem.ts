/** PEM (RFC 7468) encoding and decoding of DER blocks. */

import { X509Certificate } from 'node:crypto';

export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block in `text`, in order; base64 that does not decode strictly is skipped. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = (m[2] ?? '').replace(/\s+/g, '');
    if (!isStrictBase64(body)) continue;
    out.push({ label: m[1] ?? '', der: Buffer.from(body, 'base64') });
  }
  return out;
}

/** The DER of every CERTIFICATE block in `text`, in order (a chain or a trust bundle). */
export function pemCertificates(text: string): Buffer[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}

/** Every CERTIFICATE block in `text`, parsed, in order (a chain or a trust bundle). */
export function pemX509Certificates(text: string): X509Certificate[] {
  return pemCertificates(text).map((der) => new X509Certificate(der));
}

/** The DER of the only block labelled `label`, or undefined when there is not exactly one. */
export function pemToDer(text: string, label: string): Buffer | undefined {
  const blocks = pemBlocks(text).filter((b) => b.label === label);
  return blocks.length === 1 ? blocks[0]?.der : undefined;
}

/** Standard base64 with correct padding; rejects characters Buffer.from would silently drop. */
export function isStrictBase64(s: string): boolean {
  return s.length > 0 && s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}
