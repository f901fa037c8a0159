import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { pemCertificates } from '@tlsfleet/common';
import type { DataDir, DataFile } from '../data-dir.js';
import type { Store } from '../storage/store.js';
import { CaRotationError } from './ca-rotation-error.js';

/** Server and admin certificates that move to a new intermediate with it (key files unchanged). */
export const REISSUED: readonly DataFile[] = ['provisioningCert', 'brokerCert', 'adminCert'];

export interface LiveCertificate {
  certificate: X509Certificate;
  subject: string;
  notAfter: number;
  issuedAt: number;
  /** The device or service id for certificates of the store; undefined for the data dir's own. */
  owner: string | undefined;
}

/**
 * Every unrevoked, unexpired certificate this CA is answerable for: the store's and the data
 * dir's server and admin certificates. Revoked ones do not count: they fail anyway.
 */
export async function liveCertificates(dataDir: DataDir, store: Store, now: number): Promise<LiveCertificate[]> {
  const out: LiveCertificate[] = [];
  for (const device of await store.listDevices()) {
    for (const c of await store.listCertificates(device.id)) {
      if (c.revokedAt === undefined && c.notAfter > now) out.push({ certificate: new X509Certificate(c.pem), subject: c.subject, notAfter: c.notAfter, issuedAt: c.issuedAt, owner: device.id });
    }
  }
  for (const file of REISSUED) {
    const leaf = new X509Certificate(Buffer.from(leafOf(dataDir, file).rawData));
    const notAfter = Date.parse(leaf.validTo);
    if (notAfter > now) out.push({ certificate: leaf, subject: dataDir.path(file), notAfter, issuedAt: Date.parse(leaf.validFrom), owner: undefined });
  }
  return out;
}

/** The latest notAfter among `live`, with its subject; undefined when there is none. */
export function lastToExpire(live: readonly LiveCertificate[]): LiveCertificate | undefined {
  return live.reduce<LiveCertificate | undefined>((a, c) => (a && a.notAfter >= c.notAfter ? a : c), undefined);
}

export function leafOf(dataDir: DataDir, file: DataFile): x509.X509Certificate {
  const der = pemCertificates(dataDir.read(file))[0];
  if (!der) throw new CaRotationError('invalid_certificate', `${dataDir.path(file)} holds no certificate`);
  return new x509.X509Certificate(der);
}
