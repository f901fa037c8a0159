import { DeviceError } from './errors.js';

/**
 * OpenSSL's X509_V_ERR_* names as Node reports them (`err.code`), plus Node's own host name
 * check: the peer's certificate does not verify against the trust anchors we were given.
 */
const VERIFY_CODE = /^(UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_|INVALID_CA|PATH_LENGTH_EXCEEDED|INVALID_PURPOSE|HOSTNAME_MISMATCH|ERR_TLS_CERT_ALTNAME_INVALID)/;

/**
 * A socket-level failure to reach `target` (a provisioning or broker URL) as a typed
 * DeviceError, or undefined when it is plain network trouble (reset, timeout, ...) that the
 * caller reports as `network`. These are the failures a fast retry does not fix: a wrong
 * bootstrap CA, a misspelt host, a port nobody listens on.
 */
export function transportError(err: unknown, target: string): DeviceError | undefined {
  const code = systemCodeOf(err);
  if (code === undefined) return undefined;
  const reason = (err as Error).message;
  if (VERIFY_CODE.test(code)) {
    const hint = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'the certificate does not name this host' : 'is the trust bundle (--bootstrap-ca) the one of this service?';
    return new DeviceError('tls_verification_failed', `the TLS certificate of ${target} does not verify: ${code} (${reason}); ${hint}`, {
      cause: err,
      retryable: false,
      configuration: true,
      systemCode: code,
    });
  }
  // RFC 6761 §6.4: a name under "invalid." never resolves, whatever the resolver answered.
  if (code === 'ENOTFOUND' || (code === 'EAI_AGAIN' && isInvalidName((err as { hostname?: unknown }).hostname))) {
    return new DeviceError('host_not_found', `the host of ${target} does not resolve (${code === 'ENOTFOUND' ? 'ENOTFOUND' : 'a name under .invalid'}); check the host name`, { cause: err, retryable: false, configuration: true, systemCode: code });
  }
  if (code === 'EAI_AGAIN') {
    // The resolver could not answer (no network yet, DNS server down): transient, unlike NXDOMAIN.
    return new DeviceError('host_not_found', `the host of ${target} could not be resolved now (EAI_AGAIN: temporary resolver failure)`, { cause: err, retryable: true, systemCode: code });
  }
  if (code === 'ECONNREFUSED') {
    // Retryable: a broker restarting refuses for a moment. Still a configuration suspect when it lasts.
    return new DeviceError('connection_refused', `nothing accepts connections at ${target} (ECONNREFUSED); check the host and port, or the service is down`, {
      cause: err,
      retryable: true,
      configuration: true,
      systemCode: code,
    });
  }
  return undefined;
}

function isInvalidName(host: unknown): boolean {
  return typeof host === 'string' && /(^|\.)invalid\.?$/i.test(host);
}

/** `err.code` when it is a string, or the first inner error's (Node's happy eyeballs throws an AggregateError). */
function systemCodeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  const inner = (err as { errors?: unknown } | undefined)?.errors;
  if (Array.isArray(inner) && inner.length > 0) return systemCodeOf(inner[0]);
  return undefined;
}

/** CONNACK return codes [MQTT-3.2.2.3] and TLS alerts into stable codes. */
export function toConnectError(err: unknown, brokerUrl: string): DeviceError {
  if (err instanceof DeviceError) return err;
  const e = err as Error & { code?: unknown };
  if (typeof e.code === 'number') {
    if (e.code === 4 || e.code === 5) return new DeviceError('unauthorized', `the broker refused the connection: not authorized (CONNACK ${e.code})`, { cause: err, retryable: true });
    if (e.code === 2) return new DeviceError('identity_mismatch', 'the broker refused the client identifier (CONNACK 2)', { cause: err, retryable: false });
    return new DeviceError('connection_refused', `the broker refused the connection (CONNACK ${e.code})`, { cause: err });
  }
  // The broker's TLS alert about our certificate: it does not accept this identity.
  if (typeof e.code === 'string' && /ALERT_(CERTIFICATE|BAD_CERTIFICATE|UNKNOWN_CA|UNSUPPORTED_CERTIFICATE)/.test(e.code)) {
    return new DeviceError('unauthorized', `the broker refused our certificate during the TLS handshake (${e.code})`, { cause: err, retryable: true });
  }
  return transportError(err, `the broker ${brokerUrl}`) ?? new DeviceError('network', e.message ?? String(err), { cause: err });
}
