import { checks, defineCommand } from '@tlsfleet/common';
import { DATA_DIR, STORE_FLAGS } from './shared-flags.js';

export const INIT = defineCommand({
  name: 'init',
  summary: 'Creates a data dir: root and intermediate CA, server certificates, admin token. Refuses a non-empty directory.',
  flags: {
    'data-dir': { ...DATA_DIR, help: 'directory to create (must be empty or absent)' },
    'trust-domain': { type: 'string', value: 'TD', help: 'SPIFFE trust domain of every identity', default: 'tlsfleet.local' },
    'server-name': { type: 'string', value: 'NAME', help: 'extra DNS name or IP address of the server certificates (always localhost, 127.0.0.1, ::1)', multiple: true },
  },
});

export const TOKEN = defineCommand({
  name: 'token',
  summary: 'Mints a one-time enrollment token offline against the store; prints the token alone on stdout.',
  flags: {
    'data-dir': DATA_DIR,
    device: { type: 'string', value: 'ID', help: 'device id the token enrolls' },
    service: { type: 'string', value: 'NAME', help: 'service name the token enrolls' },
    ttl: { type: 'string', value: 'DURATION', help: 'how long the token may be used (at most 30d)', default: '24h', check: checks.durationSeconds },
    'cert-ttl': { type: 'string', value: 'DURATION', help: 'lifetime of the certificates it leads to, renewals included', default: '7d', check: checks.durationSeconds },
    ...STORE_FLAGS,
  },
  notes: ['Exactly one of --device and --service is required.'],
});

export const REVOKE = defineCommand({
  name: 'revoke',
  summary: 'Revokes every live certificate of a device in the store and rewrites the data dir\'s crl.der.',
  flags: {
    'data-dir': DATA_DIR,
    device: { type: 'string', value: 'ID', help: 'device whose certificates are revoked', required: true },
    ...STORE_FLAGS,
  },
});

export const AUDIT = defineCommand({
  name: 'audit',
  summary: 'Prints the audit record as JSON lines (the entries of GET /v1/audit), oldest first, read directly from the store.',
  flags: {
    'data-dir': DATA_DIR,
    device: { type: 'string', value: 'ID', help: 'only the records of this device' },
    limit: { type: 'string', value: 'N', help: 'stop after N records', default: 'all', check: checks.wholeNumber(1) },
    after: { type: 'string', value: 'ID', help: 'resume after the record with this id', check: checks.wholeNumber(0) },
    ...STORE_FLAGS,
  },
});

export const AUDIT_FLEET = defineCommand({
  name: 'audit-fleet',
  summary: 'Audits the fleet: certificates expired, expiring or past their renewal point, tokens outstanding (from the store), and each broker\'s revoked sessions, shared identities and CRL (from its /metrics). Prints JSON; exit 1 when something needs action.',
  flags: {
    'data-dir': DATA_DIR,
    'expiring-within': { type: 'string', value: 'DURATION', help: 'how far ahead a certificate counts as expiring', default: '7d', check: checks.durationSeconds },
    limit: { type: 'string', value: 'N', help: 'devices listed per finding (the counts are always whole)', default: '100', check: checks.wholeNumber(0) },
    'broker-metrics': { type: 'string', value: 'URL', help: "a broker's metrics URL (http://HOST:HEALTH_PORT/metrics); repeat for every instance", multiple: true },
    ...STORE_FLAGS,
  },
  notes: ['Exit status: 0 nothing needs action; 1 a device is past its renewal point, a revoked or expired certificate holds a session, an identity was used from two addresses, a broker enforces an older CRL than the data dir\'s, or a broker did not answer.'],
});
