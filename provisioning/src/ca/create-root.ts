import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { serialHex, signingAlgorithm } from './ca-keys.js';

const BACKDATE_MS = 5 * 60_000;

export interface RootCa {
  certificate: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

/**
 * A self-signed root: P-384, CA:true without pathLen (critical), keyCertSign + cRLSign
 * (critical), SKI; subject `CN=tlsfleet root CA, O=<trust domain>`. notBefore is backdated
 * 5 minutes for clock skew. `init` and `ca new-root` share it so every root has one profile.
 */
export async function createRootCa(p: { trustDomain: string; now: number; lifetimeMs: number }): Promise<RootCa> {
  const crypto = webcrypto;
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialHex(),
      name: `CN=tlsfleet root CA, O=${p.trustDomain}`,
      notBefore: new Date(p.now - BACKDATE_MS),
      notAfter: new Date(p.now + p.lifetimeMs),
      keys,
      signingAlgorithm: signingAlgorithm('P-384'),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certificate, keys };
}
