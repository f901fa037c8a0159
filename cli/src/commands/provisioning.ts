import { parseDurationMs } from '@tlsfleet/common';
import { readFileSync, statSync } from 'node:fs';
import { crlUrlOf, hookTarget, startProvisioning } from '@tlsfleet/provisioning';
import { duration, port, positiveInt, required } from '../args.js';
import { UsageError } from '../usage-error.js';
import { serviceLogs } from '../service-logs.js';
import { untilSignal } from '../signals.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { PROVISIONING } from '../definitions/provisioning.js';
import { readSecretFile } from '../secret-file.js';
import { storeUrlOf } from '../store-url.js';

export async function provisioningCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(PROVISIONING, argv);
  const logger = serviceLogs(f)('provisioning');
  const storeUrl = storeUrlOf(f);
  // Read once at start; the value is never logged.
  const adminToken = f['admin-token-file'] === undefined ? undefined : readSecretFile(f['admin-token-file'], '--admin-token-file').trim();
  const maxInFlight = positiveInt(f['max-inflight'], '--max-inflight', 64);
  const renewalReserve = positiveInt(f['renewal-reserve'], '--renewal-reserve', Math.floor(maxInFlight / 4), 0);
  if (renewalReserve >= maxInFlight) throw new UsageError(`--renewal-reserve must be below --max-inflight (${maxInFlight}), so enrollments keep a place`);
  const hookCa = f['hook-ca'] === undefined ? undefined : readCaFile(f['hook-ca']);
  // Handlers first: a SIGTERM that arrives as soon as we say we listen must still drain.
  const signalled = untilSignal();
  const running = await startProvisioning({
    dataDir: required(f['data-dir'], '--data-dir'),
    host: f.host,
    port: port(f.port, '--port', 8443),
    gate: {
      maxInFlight,
      renewalReserve,
      maxInFlightPerClient: positiveInt(f['max-inflight-per-client'], '--max-inflight-per-client', 8, 0),
      perClientRate: positiveInt(f['client-rate'], '--client-rate', 20, 0),
      perClientBurst: positiveInt(f['client-burst'], '--client-burst', 40),
    },
    crlValiditySeconds: duration(f['crl-validity'], '--crl-validity'),
    renewExpiredWithinMs: renewExpiredWithin(f['renew-expired-within'], f.retention),
    bodyTimeoutMs: durationMs(f['body-timeout'], '--body-timeout'),
    idleTimeoutMs: durationMs(f['idle-timeout'], '--idle-timeout'),
    maxConnections: f['max-connections'] === undefined ? undefined : positiveInt(f['max-connections'], '--max-connections', 1),
    storeUrl,
    adminToken,
    metricsPort: f['metrics-port'] === undefined ? undefined : port(f['metrics-port'], '--metrics-port', 0),
    publicUrl: publicUrl(f['public-url']),
    retentionMs: retention(f.retention),
    enrollHook: enrollHook(f['enroll-hook'], hookCa),
    webhooks: webhooks(f.webhook ?? [], f['webhook-secret-file'], hookCa),
    renewalRelays: f['renewal-relay'] ?? [],
    logger,
  });
  await signalled;
  await running.close();
  return 0;
}

/** `--public-url`: checked here so a bad one is a usage error before anything starts. */
function publicUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    crlUrlOf(value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return value;
}

/** `--enroll-hook URL` with `--hook-ca FILE`; the URL is checked here so a bad one is a usage error. */
function enrollHook(url: string | undefined, ca: string | undefined): { url: string; ca?: string } | undefined {
  if (url === undefined) return undefined;
  checkHookUrl(url, '--enroll-hook', ca);
  return { url, ca };
}

/** `--webhook URL`... with `--webhook-secret-file FILE` (owner-only, like every secret file) and `--hook-ca FILE`. */
function webhooks(urls: readonly string[], secretFile: string | undefined, ca: string | undefined): { urls: readonly string[]; secret?: string; ca?: string } | undefined {
  if (secretFile !== undefined && urls.length === 0) throw new UsageError('--webhook-secret-file needs at least one --webhook URL');
  if (urls.length === 0) return undefined;
  for (const url of urls) checkHookUrl(url, '--webhook', ca);
  if (new Set(urls).size !== urls.length) throw new UsageError('--webhook: the same URL is given twice');
  if (secretFile === undefined) return { urls, ca };
  const mode = statSync(secretFile, { throwIfNoEntry: false })?.mode;
  if (mode !== undefined && (mode & 0o077) !== 0) throw new UsageError(`--webhook-secret-file ${secretFile} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${secretFile}`);
  return { urls, secret: readSecretFile(secretFile, '--webhook-secret-file'), ca };
}

function checkHookUrl(url: string, flag: string, ca: string | undefined): void {
  try {
    hookTarget(url, flag, ca).agent.destroy();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function readCaFile(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--hook-ca ${path}: ${(err as NodeJS.ErrnoException).code ?? 'cannot read it'}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--hook-ca ${path}: no PEM certificate in it`);
  return pem;
}

/**
 * `--retention 90d` (default), `0` or `off` to keep everything. At least 1h: a spent token
 * answers an interrupted enrollment again for 10 minutes and must outlive that.
 */
function retention(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value === '0' || value === 'off') return 0;
  const ms = parseDurationMs(value);
  if (ms === undefined || ms < 3_600_000) throw new UsageError(`--retention takes a duration of at least 1h such as 90d, or 0/off to keep everything, not ${JSON.stringify(value)}`);
  return ms;
}

/**
 * `--renew-expired-within 30d`; `0` or `off` (default) turns it off. Below `--retention`, which
 * deletes expired certificates: a certificate no longer in the store could not renew anyway.
 */
function renewExpiredWithin(value: string | undefined, retentionFlag: string | undefined): number | undefined {
  if (value === undefined || value === '0' || value === 'off') return undefined;
  const ms = parseDurationMs(value);
  if (ms === undefined || ms < 1000) throw new UsageError(`--renew-expired-within takes a duration such as 30d, or 0/off, not ${JSON.stringify(value)}`);
  const kept = retention(retentionFlag) ?? 90 * 86_400_000;
  if (kept > 0 && ms >= kept) throw new UsageError(`--renew-expired-within (${value}) must be shorter than --retention, which deletes expired certificates`);
  return ms;
}

/** A duration flag in milliseconds (`500ms`, `5s`, `1m`); undefined when absent. */
function durationMs(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDurationMs(value);
  if (ms === undefined || ms < 1) throw new UsageError(`${flag} takes a duration such as 500ms, 5s or 1m, not ${JSON.stringify(value)}`);
  return ms;
}

export { checkStore } from '../store-url.js';
