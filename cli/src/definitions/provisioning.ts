import { checks, defineCommand, parseDurationMs } from '@tlsfleet/common';
import { CONFIG_FLAG, DATA_DIR, HOST, LOG_FLAG_DEFINITIONS, STORE_FLAGS } from './shared-flags.js';

export const PROVISIONING = defineCommand({
  name: 'provisioning',
  summary: 'Serves the provisioning API over HTTPS: enrollment with one-time tokens, renewal over mTLS, CRL, admin API.',
  configurable: true,
  flags: {
    'data-dir': DATA_DIR,
    host: HOST,
    port: { type: 'string', value: 'PORT', help: 'HTTPS port; 0 picks a free one', default: '8443', check: checks.port },
    ...STORE_FLAGS,
    'admin-token-file': { type: 'string', value: 'FILE', help: 'file holding the admin bearer token', default: 'DIR/admin.token', complete: 'file' },
    'max-inflight': { type: 'string', value: 'N', help: 'issuances processed at once; the rest wait or get 503', default: '64', check: checks.wholeNumber(1) },
    'renewal-reserve': { type: 'string', value: 'N', help: 'places of --max-inflight only certificate-authenticated renewals take', default: 'a quarter of --max-inflight', check: checks.wholeNumber(0) },
    'max-inflight-per-client': { type: 'string', value: 'N', help: 'issuances one client address may have in flight; 0: off', default: '8', check: checks.wholeNumber(0) },
    'client-rate': { type: 'string', value: 'N', help: 'issuance requests per second per client address; 0: off', default: '20', check: checks.wholeNumber(0) },
    'client-burst': { type: 'string', value: 'N', help: 'requests a client address may send at once above --client-rate', default: '40', check: checks.wholeNumber(1) },
    'body-timeout': { type: 'string', value: 'DURATION', help: 'time a request body may take to arrive after its headers', default: '5s', check: checks.durationMs },
    'idle-timeout': { type: 'string', value: 'DURATION', help: 'silence allowed before the TLS handshake and before each request', default: '15s', check: checks.durationMs },
    'max-connections': { type: 'string', value: 'N', help: 'connections open at once, kept below the open-file limit', default: '10000', check: checks.wholeNumber(1) },
    'crl-validity': { type: 'string', value: 'DURATION', help: 'nextUpdate of each CRL after its thisUpdate', default: '24h', check: checks.durationSeconds },
    'metrics-port': { type: 'string', value: 'PORT', help: 'also serve /metrics on this 127.0.0.1 port', check: checks.port },
    'public-url': { type: 'string', value: 'URL', help: 'https://HOST[:PORT] relying parties reach this service at; certificates then name <it>/v1/crl as CRL Distribution Point' },
    retention: {
      type: 'string',
      value: 'DURATION',
      help: 'expired certificates and spent or expired tokens older than this are deleted (at least 1h; 0 or off: keep all; audit kept)',
      default: '90d',
      check: (v) => (v === '0' || v === 'off' || (parseDurationMs(v) ?? 0) >= 3_600_000 ? undefined : 'takes a duration of at least 1h such as 90d, or 0/off to keep everything'),
    },
    'enroll-hook': { type: 'string', value: 'URL', help: 'ask this https URL (http only to loopback) before each enrollment; only {"allow": true} within 5s issues' },
    webhook: { type: 'string', value: 'URL', help: 'POST enrolled, renewed and revoked events to this https URL (http only to loopback), at least once, in order per device', multiple: true },
    'webhook-secret-file': { type: 'string', value: 'FILE', help: 'file (mode 0600) holding the secret that signs webhook bodies (X-Tlsfleet-Signature)', complete: 'file' },
    'hook-ca': { type: 'string', value: 'FILE', help: 'PEM trust anchors for https hook and webhook receivers, instead of the system CAs', complete: 'file' },
    ...LOG_FLAG_DEFINITIONS,
    ...CONFIG_FLAG,
  },
});
