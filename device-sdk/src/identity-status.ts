import { X509Certificate } from 'node:crypto';
import { get, type RequestOptions } from 'node:https';
import type { SecureContext } from 'node:tls';
import { normalizeSerialHex, pemX509Certificates } from '@tlsfleet/common';
import type { DeviceIdentity } from './credential-store.js';
import { readCrl } from './crl-reader.js';
import { DeviceError } from './errors.js';
import { trustContext } from './tls-context.js';
import { transportError } from './transport-error.js';

/** Whether a stored identity can still be used; `unknown` when the service could not tell. */
export type IdentityStatus = { state: 'live' } | { state: 'expired'; notAfter: string } | { state: 'revoked' } | { state: 'unknown'; error: DeviceError };

export interface IdentityStatusOptions {
  /** ms since the epoch; default Date.now(). */
  now?: number;
  /** Per request, ms. Default 10000. */
  timeoutMs?: number;
}

/** A CRL of a fleet of 20,000 devices with many revocations is a few MiB; past this it is not ours. */
const MAX_CRL_BYTES = 32 * 1024 * 1024;

/**
 * Expired (notAfter passed) or revoked (listed in the service's CRL, `GET /v1/crl`, or the
 * previous intermediate's during a CA rotation, `GET /v1/crl/previous`), else live. The
 * CRL is fetched trusting only the stored trust bundle and counts only if the issuer of
 * the identity's certificate signed it.
 */
export async function identityStatus(identity: DeviceIdentity, opts: IdentityStatusOptions = {}): Promise<IdentityStatus> {
  if ((opts.now ?? Date.now()) >= Date.parse(identity.notAfter)) return { state: 'expired', notAfter: identity.notAfter };
  try {
    const issuer = pemX509Certificates(identity.chainPem)[1] ?? issuerFromBundle(identity);
    const context = trustContext(identity.caBundlePem);
    for (const path of ['/v1/crl', '/v1/crl/previous']) {
      const der = await fetchCrl(new URL(path, identity.provisioningUrl), context, opts.timeoutMs ?? 10_000);
      if (der === undefined) continue;
      const crl = readCrl(der);
      if (!crl.signedBy(issuer.publicKey)) continue;
      return crl.revokedSerials.has(normalizeSerialHex(identity.serial)) ? { state: 'revoked' } : { state: 'live' };
    }
    throw new DeviceError('bad_response', `no CRL of ${identity.provisioningUrl} is signed by the issuer of certificate ${identity.serial}`, { retryable: false });
  } catch (caught) {
    const error = caught instanceof DeviceError ? caught : new DeviceError('bad_response', `cannot read the CRL: ${(caught as Error).message}`, { cause: caught });
    return { state: 'unknown', error };
  }
}

function issuerFromBundle(identity: DeviceIdentity): X509Certificate {
  const leaf = new X509Certificate(identity.certificatePem);
  const issuer = pemX509Certificates(identity.caBundlePem).find((ca) => leaf.checkIssued(ca));
  if (issuer === undefined) throw new DeviceError('state_corrupt', `the stored identity holds no issuer of certificate ${identity.serial}`);
  return issuer;
}

/** The DER body of a 200 answer; undefined on 404 (no previous intermediate). */
function fetchCrl(url: URL, secureContext: SecureContext, timeoutMs: number): Promise<Buffer | undefined> {
  const what = `the provisioning service ${url.origin}`;
  return new Promise((resolve, reject) => {
    const options: RequestOptions & { secureContext: SecureContext } = { secureContext, minVersion: 'TLSv1.2', agent: false, timeout: timeoutMs };
    const req = get(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_CRL_BYTES) req.destroy(new DeviceError('bad_response', `the CRL of ${url.origin} is over ${MAX_CRL_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode === 404) return resolve(undefined);
        if (res.statusCode !== 200) return reject(new DeviceError('bad_response', `${url.href} answered ${res.statusCode}`));
        resolve(Buffer.concat(chunks));
      });
    });
    req.on('timeout', () => req.destroy(new DeviceError('network', `no answer from ${url.origin} within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof DeviceError ? err : (transportError(err, what) ?? new DeviceError('network', `${url.origin}: ${err.message}`, { cause: err }))));
  });
}
