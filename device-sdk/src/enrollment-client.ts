import { X509Certificate } from 'node:crypto';
import { request, type RequestOptions } from 'node:https';
import type { SecureContext } from 'node:tls';
import { isErrorCode, pemCertificates, pemX509Certificates, type EnrollResponse } from '@tlsfleet/common';
import type { DeviceIdentity } from './credential-store.js';
import { DeviceError } from './errors.js';
import type { DeviceKey } from './keys.js';
import { identityContext, trustContext } from './tls-context.js';
import { transportError } from './transport-error.js';

/** Answers are a few KiB of PEM; anything bigger is not our service. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface ProvisioningClientOptions {
  /** Per request, ms. Default 30000. */
  timeoutMs?: number;
}

/**
 * The device's side of the provisioning API (docs/reference/http-api.md): enroll with a token over a TLS
 * connection that trusts only the given bundle (no system CAs), renew over mTLS.
 */
export class ProvisioningClient {
  readonly url: string;
  private readonly timeoutMs: number;

  constructor(url: string, opts: ProvisioningClientOptions = {}) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:') throw new DeviceError('invalid_request', `provisioning URL must be https:// (got ${url})`);
    this.url = parsed.origin;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** POST /v1/enroll. `trustPem` is the bootstrap CA bundle given at flash time. */
  async enroll(token: string, csrPem: string, key: DeviceKey, trustPem: string): Promise<DeviceIdentity> {
    const body = await this.post('/v1/enroll', { token, csr: csrPem }, trustContext(trustPem));
    return this.toIdentity(body, key);
  }

  /** POST /v1/renew, authenticated by the current identity's certificate. */
  async renew(csrPem: string, key: DeviceKey, current: DeviceIdentity): Promise<DeviceIdentity> {
    const body = await this.post('/v1/renew', { csr: csrPem }, identityContext(current));
    return renewedIdentity(body, key, current);
  }

  /**
   * POST /v1/renew-expired: renewal of a certificate that has expired, when the service allows
   * it (`--renew-expired-within`). No client certificate: `proofB64` (the CSR's DER signed by
   * the expired certificate's key) shows the old key; the TLS link trusts the identity's bundle.
   */
  async renewExpired(csrPem: string, proofB64: string, key: DeviceKey, expired: DeviceIdentity): Promise<DeviceIdentity> {
    const body = await this.post('/v1/renew-expired', { certificate: expired.certificatePem, csr: csrPem, proof: proofB64 }, trustContext(expired.caBundlePem));
    const renewed = this.toIdentity(body, key);
    if (renewed.deviceId !== expired.deviceId) throw new DeviceError('identity_mismatch', `renewal answered for ${renewed.deviceId}, not ${expired.deviceId}`);
    return renewed;
  }

  private toIdentity(body: unknown, key: DeviceKey): DeviceIdentity {
    return identityFromAnswer(body, key, this.url);
  }

  private post(path: string, payload: object, secureContext: SecureContext): Promise<unknown> {
    const data = Buffer.from(JSON.stringify(payload));
    const url = new URL(path, this.url);
    return new Promise((resolve, reject) => {
      const options: RequestOptions & { secureContext: SecureContext } = {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': data.length, accept: 'application/json' },
        secureContext,
        minVersion: 'TLSv1.2',
        agent: false,
        timeout: this.timeoutMs,
      };
      const req = request(url, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new DeviceError('bad_response', `the provisioning answer is over ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err) => reject(new DeviceError('network', err.message, { cause: err })));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          if (status >= 200 && status < 300 && body !== undefined) return resolve(body);
          reject(errorFromAnswer(status, body, res.headers['retry-after']));
        });
      });
      req.on('timeout', () => req.destroy(new DeviceError('network', `no answer from ${url.origin} within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof DeviceError ? err : (transportError(err, `the provisioning service ${url.origin}`) ?? new DeviceError('network', `${url.origin}: ${err.message}`, { cause: err }))));
      req.end(data);
    });
  }
}

/** The service's `{"error":{"code","message"}}` as a DeviceError; 5xx and 429 without a body still map. */
export function errorFromAnswer(status: number, body: unknown, retryAfter: string | string[] | undefined): DeviceError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  const retryAfterMs = Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 3600) * 1000 : undefined;
  const message = typeof e?.message === 'string' ? e.message : `the provisioning service answered ${status}`;
  if (isErrorCode(e?.code)) return new DeviceError(e.code, message, { status, retryAfterMs });
  if (status === 429) return new DeviceError('rate_limited', message, { status, retryAfterMs });
  if (status >= 500) return new DeviceError(status === 503 ? 'overloaded' : 'internal_error', message, { status, retryAfterMs });
  return new DeviceError('bad_response', message, { status, retryable: false });
}

/**
 * A /v1/renew (or /v1/enroll) answer as an identity, after checking that the leaf carries
 * `key` and is signed by the next certificate of the chain.
 */
export function identityFromAnswer(body: unknown, key: DeviceKey, provisioningUrl: string): DeviceIdentity {
  const r = body as Partial<EnrollResponse> & { serial?: unknown; notBefore?: unknown };
  for (const field of ['deviceId', 'certificate', 'chain', 'caBundle', 'notAfter', 'renewAfter'] as const) {
    if (typeof r[field] !== 'string') throw new DeviceError('bad_response', `the provisioning answer has no ${field}`);
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(r.certificate!);
    const chain = pemX509Certificates(r.chain!);
    if (pemCertificates(r.caBundle!).length === 0) throw new Error('empty trust bundle');
    // Not trusting our own eyes over TLS: the leaf must carry our key and be signed by the next link.
    if (!leaf.checkPrivateKey(key.privateKey)) throw new Error('the certificate is not for our key');
    if (chain.length < 2 || !chain[0]!.publicKey.equals(leaf.publicKey) || !leaf.verify(chain[1]!.publicKey)) throw new Error('the chain does not start with the leaf and its issuer');
  } catch (err) {
    throw new DeviceError('bad_response', `the provisioning answer is not a usable certificate: ${(err as Error).message}`, { cause: err });
  }
  return {
    deviceId: r.deviceId!,
    privateKeyPem: key.privateKeyPem,
    certificatePem: r.certificate!,
    chainPem: r.chain!,
    caBundlePem: r.caBundle!,
    serial: typeof r.serial === 'string' ? r.serial : leaf.serialNumber.toLowerCase(),
    notBefore: typeof r.notBefore === 'string' ? r.notBefore : new Date(leaf.validFrom).toISOString(),
    notAfter: r.notAfter!,
    renewAfter: r.renewAfter!,
    provisioningUrl,
  };
}

/** A renewal answer for `current`: the same device, a usable certificate for `key`. */
export function renewedIdentity(body: unknown, key: DeviceKey, current: DeviceIdentity): DeviceIdentity {
  const renewed = identityFromAnswer(body, key, current.provisioningUrl);
  if (renewed.deviceId !== current.deviceId) throw new DeviceError('identity_mismatch', `renewal answered for ${renewed.deviceId}, not ${current.deviceId}`);
  return renewed;
}
