import type { X509Certificate } from 'node:crypto';
import { pemX509Certificates } from '@tlsfleet/common';
import type { DataDir } from '../data-dir.js';

/** The certificates of the data dir's ca-bundle.pem, in file order. */
export function readBundle(dataDir: DataDir): X509Certificate[] {
  return pemX509Certificates(dataDir.read('caBundle'));
}

/** Certificates as PEM, one after another, each ending in a newline: a bundle file's text. */
export function pemOf(certs: readonly X509Certificate[]): string {
  return certs.map((c) => c.toString().trim() + '\n').join('');
}

/** A certificate subject on one line, for messages. */
export function oneLine(subject: string): string {
  return subject.replace(/\n/g, ', ');
}
