import { readFileSync } from 'node:fs';
import { CommandLineError, helpText, parseCommandLine, parseDurationSeconds, synopsis } from '@tlsfleet/common';
import { ENROLL_DEFINITION, RUN_DEFINITION } from './agent-flags.js';
import { createDevice } from './device.js';
import { enrollWithStore } from './enroll.js';
import { DeviceError } from './errors.js';
import { FileCredentialStore, type FileCredentialStoreOptions } from './file-credential-store.js';
import { identityStatus } from './identity-status.js';
import { KEY_ALGORITHMS, type KeyAlgorithm } from './keys.js';

/** One line per verb, from the same definitions that parse the flags (agent-flags.ts). */
export const AGENT_USAGE = { enroll: synopsis(ENROLL_DEFINITION), run: synopsis(RUN_DEFINITION) } as const;

/** Exit status when the identity is revoked or expired: systemd's RestartPreventExitStatus=3 stops the loop. */
export const EXIT_REENROLL = 3;
/** Exit status of a configuration error (wrong bootstrap CA, unknown host, refused port): sysexits' EX_CONFIG. */
export const EXIT_CONFIG = 78;

class AgentUsageError extends Error {}

/**
 * The reference device agent: `device enroll` and `device run`. Self-contained on the
 * SDK, so the same code runs from the CLI and from the single-file bundle.
 * Returns the exit status (0 ok, 1 failed, 2 usage, 3 must enroll again).
 */
export async function runAgent(argv: string[], hooks: { store?: FileCredentialStoreOptions } = { store: faultFromEnv() }): Promise<number> {
  const [verb, ...rest] = argv;
  const def = verb === 'enroll' ? ENROLL_DEFINITION : verb === 'run' ? RUN_DEFINITION : undefined;
  // docs/reference/command-line.md: `tlsfleet device enroll --help` prints that command's usage and exits 0.
  if (def !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(helpText(def));
    return 0;
  }
  try {
    if (verb === 'enroll') return await enroll(rest, hooks);
    if (verb === 'run') return await run(rest, hooks);
    throw new AgentUsageError(verb === undefined ? 'a subcommand is required' : `unknown subcommand "${verb}"`);
  } catch (err) {
    if (err instanceof AgentUsageError || err instanceof CommandLineError) {
      process.stderr.write(`tlsfleet device: ${(err as Error).message}\nusage:\n  ${AGENT_USAGE.enroll}\n  ${AGENT_USAGE.run}\n`);
      return 2;
    }
    if (err instanceof DeviceError) {
      process.stderr.write(`tlsfleet device ${verb}: ${err.message} (${err.code})\n`);
      if (err.configuration) return EXIT_CONFIG;
      return err.code === 'expired' || err.code === 'revoked' ? EXIT_REENROLL : 1;
    }
    throw err;
  }
}

/**
 * Fault injection for power-cut tests: TLSFLEET_FAULT_KILL_AT=<store step>[:<n>] kills
 * the process with SIGKILL at the n-th time the credential store reaches that step
 * (for example `pendingEnrollment:dir-synced` or `candidate:renamed:2`).
 */
function faultFromEnv(): FileCredentialStoreOptions {
  const spec = process.env.TLSFLEET_FAULT_KILL_AT;
  if (!spec) return {};
  const m = /^(.+?)(?::(\d+))?$/.exec(spec)!;
  const step = m[1]!;
  let left = Number(m[2] ?? 1);
  return {
    onStep: (s) => {
      if (s === step && --left === 0) process.kill(process.pid, 'SIGKILL');
    },
  };
}

function required(values: Record<string, unknown>, ...names: string[]): void {
  const missing = names.filter((n) => values[n] === undefined);
  if (missing.length > 0) throw new AgentUsageError(`missing ${missing.map((n) => `--${n}`).join(', ')}`);
}

function readPem(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new DeviceError('invalid_request', `cannot read ${path}: ${(err as Error).message}`);
  }
}

/**
 * The enrollment token from --token or, kept off the command line where `ps` shows it,
 * from the file --token-file names (surrounding whitespace trimmed). Never both.
 */
function tokenOf(values: { token?: string; 'token-file'?: string }, needed: boolean): string | undefined {
  const file = values['token-file'];
  if (values.token !== undefined && file !== undefined) throw new AgentUsageError('exactly one of --token and --token-file is allowed');
  if (file === undefined) {
    if (needed && values.token === undefined) throw new AgentUsageError('exactly one of --token and --token-file is required');
    return values.token;
  }
  const token = readPem(file).trim();
  if (token === '') throw new DeviceError('invalid_request', `${file} holds no token`);
  return token;
}

function keyType(value: string | undefined): KeyAlgorithm | undefined {
  if (value === undefined) return undefined;
  if (!(KEY_ALGORITHMS as readonly string[]).includes(value)) throw new AgentUsageError(`--key-type must be one of ${KEY_ALGORITHMS.join(', ')}`);
  return value as KeyAlgorithm;
}

function durationMs(flag: string, value: string | undefined, fallbackS: number): number {
  if (value === undefined) return fallbackS * 1000;
  const s = parseDurationSeconds(value);
  if (s === undefined || s <= 0) throw new AgentUsageError(`--${flag} must be a duration like 30s or 5m (got "${value}")`);
  return s * 1000;
}

function log(event: string, fields: object = {}): void {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), event, ...fields }) + '\n');
}

async function enroll(argv: string[], hooks: { store?: FileCredentialStoreOptions }): Promise<number> {
  const values = parseCommandLine(ENROLL_DEFINITION, argv);
  required(values, 'provisioning', 'state', 'bootstrap-ca');
  const token = tokenOf(values, true)!;
  const store = new FileCredentialStore(values.state!, hooks.store);
  // Re-running a provisioning script after a power cut must not fail: a live identity is
  // kept and the token not spent. A revoked or expired one is replaced (docs/concepts.md: re-enrollment).
  const { current, candidate } = await store.load();
  const stored = candidate ?? current;
  if (stored !== undefined) {
    const status = await identityStatus(stored);
    if (status.state === 'live' || status.state === 'unknown') {
      const unknown = status.state === 'unknown' ? { revocationUnknown: { code: status.error.code, message: status.error.message } } : {};
      log('already-enrolled', { deviceId: stored.deviceId, serial: stored.serial, notAfter: stored.notAfter, ...unknown });
      return 0;
    }
    log('reenrolling', { deviceId: stored.deviceId, serial: stored.serial, reason: status.state });
  }
  const identity = await enrollWithStore(store, {
    replaceDeadIdentity: stored !== undefined,
    token,
    provisioningUrl: values.provisioning!,
    bootstrapCa: readPem(values['bootstrap-ca']!),
    keyAlgorithm: keyType(values['key-type']),
    onRetry: (err, delayMs) => log('enroll-retry', { code: err.code, message: err.message, delayMs }),
  });
  log('enrolled', { deviceId: identity.deviceId, serial: identity.serial, notAfter: identity.notAfter, renewAfter: identity.renewAfter, ...(stored ? { replaced: stored.serial } : {}) });
  return 0;
}

async function run(argv: string[], hooks: { store?: FileCredentialStoreOptions }): Promise<number> {
  const values = parseCommandLine(RUN_DEFINITION, argv);
  required(values, 'state', 'broker');
  const token = tokenOf(values, false);
  const heartbeatMs = durationMs('heartbeat', values.heartbeat, 30);
  const device = createDevice({
    store: new FileCredentialStore(values.state!, hooks.store),
    stateDir: values.state!,
    brokerUrl: values.broker!,
    token,
    provisioningUrl: values.provisioning,
    bootstrapCa: values['bootstrap-ca'] === undefined ? undefined : readPem(values['bootstrap-ca']),
    keyAlgorithm: keyType(values['key-type']),
    queue: { persist: values['persist-queue'] ?? false },
    reconnect: { initialDelayMs: durationMs('reconnect-min', values['reconnect-min'], 1), maxDelayMs: durationMs('reconnect-max', values['reconnect-max'], 60) },
  });
  const startedAt = Date.now();
  device.on('enrolled', (id) => log('enrolled', { ...id }));
  device.on('renewed', (id, info) => log('renewed', { ...id, ...(info?.afterExpiry ? { afterExpiry: true } : {}) }));
  // afterMs: the attempt that connected, from its start to CONNACK (not since the agent started).
  device.on('connected', ({ attemptMs, ...info }) => log('connected', { ...info, afterMs: attemptMs, sinceStartMs: Date.now() - startedAt }));
  device.on('disconnected', (info) => log('disconnected', info));
  const once = onceUntilChanged();
  device.on('error', (err) => once(`error:${errorKey(err)}`, () => log('error', errorFields(err))));
  device.on('reconnecting', ({ error, delayMs, slow }) => once(`retry:${errorKey(error)}:${slow}`, () => log('reconnecting', { ...errorFields(error), delayMs, slow })));
  device.on('connected', () => once.reset());
  // A heartbeat right after every connect, then one per interval: a watcher knows the device
  // is up (and that it can publish) without waiting an interval.
  let seq = 0;
  let heartbeat: NodeJS.Timeout | undefined;
  let stopping = false;
  const beat = () => {
    const body = JSON.stringify({ seq: seq++, uptimeS: Math.round((Date.now() - startedAt) / 1000), at: new Date().toISOString() });
    device.publish('heartbeat', body, { qos: 1 }).catch((err: DeviceError) => log('heartbeat-dropped', { code: err.code }));
  };
  device.on('connected', () => {
    clearInterval(heartbeat);
    // A connect that completes while the agent stops (a certificate swap under way at
    // SIGTERM) must not start a timer nothing would clear: it would keep the process alive.
    if (stopping) return;
    beat();
    heartbeat = setInterval(beat, heartbeatMs);
  });
  const finished = new Promise<number>((resolve) => {
    device.once('reenrollment-required', (err) => {
      log('reenrollment-required', { code: err.code, message: err.message });
      resolve(EXIT_REENROLL);
    });
    const stop = () => resolve(0);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  try {
    await device.start();
  } catch (err) {
    await device.close();
    throw err;
  }
  // Commands a service sends to devices/<id>/commands/# show up as `command` lines, so an
  // operator can see one arrive; a policy that forbids the subscription only loses that.
  await device
    .subscribe('commands/#', (subtopic, payload) => log('command', { topic: subtopic, ...payloadFields(payload) }))
    .catch((err: DeviceError) => log('error', errorFields(err)));
  const status = await finished;
  stopping = true;
  clearInterval(heartbeat);
  await device.close();
  log('stopped', { status });
  return status;
}

/** A UTF-8 payload as text, anything else as base64, so a log line never carries raw bytes. */
function payloadFields(payload: Buffer): { payload: string } | { payloadBase64: string } {
  const text = payload.toString('utf8');
  return Buffer.from(text, 'utf8').equals(payload) ? { payload: text } : { payloadBase64: payload.toString('base64') };
}

function errorKey(err: DeviceError): string {
  return `${err.code}:${err.systemCode ?? ''}`;
}

function errorFields(err: DeviceError): object {
  return { code: err.code, retryable: err.retryable, message: err.message, ...(err.configuration ? { configuration: true } : {}), ...(err.systemCode ? { reason: err.systemCode } : {}) };
}

/**
 * Logs a repeated failure once per change of reason (a device retrying for hours must not
 * print the same line every few seconds); a connection starts the count afresh.
 */
function onceUntilChanged(): ((key: string, write: () => void) => void) & { reset(): void } {
  const last = new Map<string, string>();
  const said = (key: string, write: () => void) => {
    const kind = key.slice(0, key.indexOf(':'));
    if (last.get(kind) === key) return;
    last.set(kind, key);
    write();
  };
  return Object.assign(said, { reset: () => last.clear() });
}
