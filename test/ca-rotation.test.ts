import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { pemCertificates, subjectKeyId } from '@tlsfleet/common';
import type { Device } from '@tlsfleet/device-sdk';
import { enrollAt, startFleetEnv, wssUrlOf, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { newDevice, nextEvent, startConnected } from './harness/device-env.js';
import { closedAt, countMatches, inbox, metric, metricUntil, outputMatches, tryConnect, within } from './harness/broker-probe.js';
import { runCli, startProvisioningProcess, type CliResult, type Service } from './harness/cli.js';
import { makeCsr, newKey } from './harness/csr.js';
import { postJson, request } from './harness/https-client.js';
import { openssl } from './harness/openssl.js';
import { clientCertificateSignedBy } from './harness/openssl-pki.js';
import { pollUntil } from './harness/poll.js';

/** docs/concepts.md: a revoked device is disconnected within 10 s. */
const REVOCATION_BOUND_MS = 10_000;

function ok(r: CliResult, what: string): CliResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr}`);
  return r;
}

function subjectOf(pem: string): string {
  return new X509Certificate(pem).subject;
}

/** The common name of a certificate, as openssl prints it in `CN = ...,`. */
function cnOf(pem: string): string {
  return /^CN=(.*)$/m.exec(subjectOf(pem))?.[1] ?? '';
}

const cli = (...args: string[]) => runCli(args);

/** SIGHUP, then waits for the broker's next `TLS material reloaded`. */
async function sighupBroker(broker: Service): Promise<void> {
  const before = countMatches(broker.output(), /TLS material reloaded/);
  broker.child.kill('SIGHUP');
  await within(outputMatches(broker, /TLS material reloaded/, before), 10_000, 'the broker reloading its TLS material');
}

/** Restarts provisioning on its port (env.stop() stops only the first process, so the caller stops this one). */
async function restartProvisioning(env: FleetEnv, running: Service): Promise<Service> {
  await running.stop();
  return startProvisioningProcess(env.dataDir, ['--port', String(env.service.port)]);
}

/**
 * Runbook steps 1-3: `ca request`, `ca sign` with the given root (its key stays where it
 * is), `ca install`, SIGHUP the broker, restart provisioning. The new intermediate's PEM
 * and the provisioning process now serving.
 */
async function rotateIntermediate(
  env: FleetEnv,
  root: { cert: string; key: string; outDir: string },
  running: Service = env.service,
): Promise<{ newIntermediate: string; provisioning: Service; installed: CliResult }> {
  // Step 1 (serving side): new key + CSR.
  const csrPath = ok(await cli('ca', 'request', '--data-dir', env.dataDir), 'ca request').stdout.trim();
  // Step 2 (offline): the root signs it; the data dir is not involved.
  const signedPath = join(root.outDir, 'intermediate-2.pem');
  ok(
    await cli('ca', 'sign', '--csr', csrPath, '--root-cert', root.cert, '--root-key', root.key, '--replaces', join(env.dataDir, 'intermediate-ca.pem'), '--lifetime', '365d', '--out', signedPath),
    'ca sign',
  );
  // Step 3 (serving side): install, then the broker reloads (SIGHUP) and provisioning restarts.
  const installed = ok(await cli('ca', 'install', '--data-dir', env.dataDir, '--cert', signedPath), 'ca install');
  await sighupBroker(env.broker);
  return { newIntermediate: readFileSync(signedPath, 'utf8'), provisioning: await restartProvisioning(env, running), installed };
}

/** Moves the root key out of the data dir into env.dir/`name` (0700) with a copy of its certificate; returns that dir. */
function moveRootOffline(env: FleetEnv, name: string): string {
  const dir = join(env.dir, name);
  mkdirSync(dir, { mode: 0o700 });
  renameSync(join(env.dataDir, 'root-ca.key'), join(dir, 'root-ca.key'));
  writeFileSync(join(dir, 'root-ca.pem'), readFileSync(join(env.dataDir, 'root-ca.pem')));
  return dir;
}

/**
 * The runbook of docs/operations.md ("Trust bundle and intermediate rotation"), step by step,
 * with real processes: the CLI, provisioning, the broker, mqtt.js devices and openssl.
 */
describe('intermediate rotation runbook', () => {
  let env: FleetEnv;
  let offline: string;
  const clients: MqttClient[] = [];
  /** Provisioning after its restart (env.stop() stops only the first process). */
  let provisioning: Service | undefined;

  beforeAll(async () => {
    env = await startFleetEnv();
    // Step 0: the root key lives offline; the serving side never sees it again.
    offline = moveRootOffline(env, 'offline');
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await provisioning?.stop();
    await env?.stop();
  });

  const connect = async (creds: DeviceCredentials) => {
    const client = await env.connect(creds);
    clients.push(client);
    return client;
  };
  const verify = (args: string[]) => openssl(['verify', '-CAfile', join(env.dataDir, 'ca-bundle.pem'), ...args]);

  it('rotates the intermediate with the root offline, keeps sessions, revocation and both chains working, and retires the old one', async () => {
    const oldIntermediate = readFileSync(join(env.dataDir, 'intermediate-ca.pem'), 'utf8');
    // Outside a rotation there is no previous intermediate, so no previous CRL.
    expect((await request(`${env.url}/v1/crl/previous`, { ca: env.ca })).status).toBe(404);
    // Device A and device R hold old-intermediate certificates; A's is the longest-lived one.
    const a = await enrollAt(env, 'sensor-a', { certTtl: '50s' });
    const r = await enrollAt(env, 'sensor-r', { certTtl: '40s' });
    const clientA = await connect(a);
    const clientR = await connect(r);
    let aClosed = false;
    clientA.on('close', () => (aClosed = true));

    let newIntermediate: string;
    ({ newIntermediate, provisioning } = await rotateIntermediate(env, { cert: join(offline, 'root-ca.pem'), key: join(offline, 'root-ca.key'), outDir: offline }));

    const bundle = readFileSync(join(env.dataDir, 'ca-bundle.pem'), 'utf8');
    expect(bundle).toContain(newIntermediate.trim());
    expect(bundle).toContain(oldIntermediate.trim());
    expect((await request(`${env.url}/v1/ca`, { ca: env.ca })).text()).toBe(bundle);

    // A's session survived the whole rotation.
    expect(aClosed).toBe(false);

    // A new device gets a new-intermediate chain (openssl says who issued it and that it verifies).
    const b = await enrollAt(env, 'sensor-b');
    expect(cnOf(newIntermediate)).not.toBe(cnOf(oldIntermediate));
    expect((await openssl(['x509', '-in', b.chainFile, '-noout', '-issuer'])).stdout).toContain(`CN = ${cnOf(newIntermediate)},`);
    expect((await verify([b.chainFile])).stdout).toContain(': OK');
    // During the overlap the old-intermediate certificates verify too.
    expect((await verify([a.chainFile])).stdout).toContain(': OK');

    // A (old) and B (new) exchange messages through the broker with a service (new).
    const service = await enrollAt(env, 'checker', { kind: 'service' });
    const clientS = await connect(service);
    const seen = inbox(clientS);
    await clientS.subscribeAsync('devices/+/#', { qos: 1 });
    const clientB = await connect(b);
    const toA = inbox(clientA);
    await clientA.subscribeAsync('devices/sensor-a/commands/#', { qos: 1 });
    await clientA.publishAsync('devices/sensor-a/telemetry', 'from-a', { qos: 1 });
    await clientB.publishAsync('devices/sensor-b/telemetry', 'from-b', { qos: 1 });
    await within(seen.next((m) => m.payload === 'from-a'), 10_000, 'A to the service');
    await within(seen.next((m) => m.payload === 'from-b'), 10_000, 'B to the service');
    await clientS.publishAsync('devices/sensor-a/commands/ping', 'to-a', { qos: 1 });
    await within(toA.next((m) => m.payload === 'to-a'), 10_000, 'the service to A');

    // A renews: new-intermediate certificate and the new bundle (both intermediates).
    const keyA2 = newKey();
    const renewed = await postJson(`${env.url}/v1/renew`, { csr: await makeCsr(keyA2) }, { ca: env.ca, cert: a.chain, key: a.key });
    expect(renewed.status).toBe(201);
    const a2Body = renewed.json();
    expect(new X509Certificate(a2Body.certificate).issuer).toBe(subjectOf(newIntermediate));
    expect(a2Body.caBundle).toBe(bundle);

    // Revoking an old-intermediate device still closes its session, and openssl sees it revoked
    // in the previous intermediate's CRL.
    const rClosed = closedAt(clientR);
    ok(await cli('revoke', '--data-dir', env.dataDir, '--device', 'sensor-r'), 'revoke');
    await within(rClosed, REVOCATION_BOUND_MS, 'the revoked old-intermediate session closing');
    const crlCheck = await verify(['-crl_check', '-CRLfile', join(env.dataDir, 'previous-crl.der'), r.chainFile]);
    expect(crlCheck.stdout + crlCheck.stderr).toMatch(/certificate revoked/);
    expect((await tryConnect(env.brokerUrl, { clientId: r.id, cert: r.chain, key: r.key, ca: env.ca })).outcome).not.toBe('connected');
    const previousCrl = await openssl(['crl', '-inform', 'DER', '-in', join(env.dataDir, 'previous-crl.der'), '-noout', '-issuer']);
    expect(previousCrl.stdout).toContain(`CN = ${cnOf(oldIntermediate)},`);
    // Relying parties that fetch CRLs over HTTP get the same list from GET /v1/crl/previous.
    const served = await request(`${env.url}/v1/crl/previous`, { ca: env.ca });
    expect(served.status).toBe(200);
    expect(served.headers['content-type']).toBe('application/pkix-crl');
    const servedFile = join(env.dir, 'served-previous-crl.der');
    writeFileSync(servedFile, served.body);
    const servedCrl = (await openssl(['crl', '-inform', 'DER', '-in', servedFile, '-noout', '-text'])).stdout;
    expect(servedCrl).toContain(`CN = ${cnOf(oldIntermediate)},`);
    expect(servedCrl).toContain(`Serial Number: ${new X509Certificate(r.chain).serialNumber.toUpperCase()}`);
    const servedCheck = await verify(['-crl_check', '-CRLfile', servedFile, r.chainFile]);
    expect(servedCheck.stdout + servedCheck.stderr).toMatch(/certificate revoked/);

    // Too early: A's first certificate is still valid; retire refuses with the date and changes nothing.
    const early = await cli('ca', 'retire', '--data-dir', env.dataDir);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/too_early/);
    expect(early.stderr).toMatch(/until \d{4}-\d\d-\d\dT/);
    expect(readFileSync(join(env.dataDir, 'ca-bundle.pem'), 'utf8')).toBe(bundle);

    // Once A's old certificate has expired (its broker session closes at notAfter), retire succeeds.
    await within(closedAt(clientA), 60_000, 'A\'s old-certificate session closing at notAfter');
    await pollUntil('retire to succeed', () => cli('ca', 'retire', '--data-dir', env.dataDir), (res) => res.code === 0, 30);
    await sighupBroker(env.broker);
    expect(readFileSync(join(env.dataDir, 'ca-bundle.pem'), 'utf8')).not.toContain(oldIntermediate.trim());

    // After retire: old-intermediate certificates are refused, new ones connect.
    expect((await tryConnect(env.brokerUrl, { clientId: a.id, cert: a.chain, key: a.key, ca: env.ca })).outcome).not.toBe('connected');
    expect((await verify([a.chainFile])).code).not.toBe(0);
    const a2 = await tryConnect(env.brokerUrl, { clientId: a.id, cert: a2Body.chain, key: keyA2.privatePem, ca: env.ca });
    clients.push(a2.client);
    expect(a2.outcome).toBe('connected');
    expect(clientB.connected).toBe(true);
  }, 180_000);
});

/**
 * A forced retire (the old intermediate's key suspected compromised): the broker pins each
 * certificate's issuer (AKI) to the CAs of the current bundle, so the retired intermediate's
 * certificates stop working at once, though their chains still reach the root.
 */
describe('forced retire of the previous intermediate', () => {
  let env: FleetEnv;
  let provisioning: Service;
  const clients: MqttClient[] = [];
  let sdkDevice: Device | undefined;

  beforeAll(async () => {
    env = await startFleetEnv({ brokerArgs: ['--ws-port', '0'] });
    provisioning = env.service;
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await sdkDevice?.close();
    if (provisioning !== env?.service) await provisioning?.stop();
    await env?.stop();
  });

  const connect = async (creds: DeviceCredentials) => {
    const client = await env.connect(creds);
    clients.push(client);
    return client;
  };

  it('closes the live sessions of its certificates, refuses them with CONNACK 5, leaves new-intermediate devices alone, and lets its devices renew over mTLS and come back', async () => {
    // Device C holds a long-lived certificate from the intermediate about to be retired.
    const c = await enrollAt(env, 'sensor-c', { certTtl: '1h' });
    const clientC = await connect(c);
    let cClosed = false;
    clientC.on('close', () => (cClosed = true));
    // Device D runs the SDK, also on an old-intermediate certificate.
    const d = await newDevice(env, 'sensor-d', { certTtlSeconds: 3600 });
    sdkDevice = d;
    await startConnected(d);
    const dOldSerial = d.identity?.serial;

    let newIntermediate: string;
    ({ newIntermediate, provisioning } = await rotateIntermediate(env, { cert: join(env.dataDir, 'root-ca.pem'), key: join(env.dataDir, 'root-ca.key'), outDir: env.dir }));
    expect(cClosed).toBe(false);
    const n = await enrollAt(env, 'sensor-n');
    expect(new X509Certificate(n.chain).issuer).toBe(subjectOf(newIntermediate));
    const clientN = await connect(n);
    let nClosed = false;
    clientN.on('close', () => (nClosed = true));
    expect(clientC.connected).toBe(true);

    // The retired key is "suspected compromised": the test keeps a copy, as an attacker would.
    const stolen = { certFile: join(env.dir, 'stolen-ca.pem'), keyFile: join(env.dir, 'stolen-ca.key') };
    copyFileSync(join(env.dataDir, 'previous-intermediate-ca.pem'), stolen.certFile);
    copyFileSync(join(env.dataDir, 'previous-intermediate-ca.key'), stolen.keyFile);

    // Without --force retire refuses (C's certificate is valid for an hour); with it, it goes.
    expect((await cli('ca', 'retire', '--data-dir', env.dataDir)).stderr).toMatch(/too_early/);
    const closed = closedAt(clientC);
    // D, refused on reconnecting, renews over mTLS and comes back with a new-intermediate certificate.
    const dRenewed = nextEvent(d, 'renewed');
    const dBack = nextEvent(d, 'connected', (info) => info.serial !== dOldSerial);
    const retired = ok(await cli('ca', 'retire', '--data-dir', env.dataDir, '--force'), 'ca retire --force');
    expect(retired.stdout + retired.stderr).toMatch(/2 certificate/);
    await sighupBroker(env.broker);
    // The bundle file's watcher may have reloaded first: either way the session closes.
    await within(closed, 5_000, 'C\'s old-intermediate session closing after the retire');
    const [{ serial: dNewSerial }] = await within(dRenewed, 20_000, 'D renewing after its refusal');
    expect((await within(dBack, 20_000, 'D reconnecting with its renewed certificate'))[0].serial).toBe(dNewSerial);
    // C's and D's sessions; D's reconnects before its renewal were refused.
    expect(await metric(env.healthUrl, 'tlsfleet_broker_revocation_disconnects_total', { reason: 'issuer_not_trusted' })).toBe(2);
    // Log lines cross the broker's stdout pipe on their own time: wait for them, do not read once.
    await within(outputMatches(env.broker, /"client":"sensor-d".*"reason":"issuer_not_trusted".*connection refused/), 5000, 'D\'s refusal log line');
    await within(outputMatches(env.broker, /"client":"sensor-c".*issuer no longer in the trust bundle: session closed/), 5000, 'C\'s session-closed log line');

    // C's old certificate still chains to the root, but its issuer is no longer trusted: over
    // mqtts and over wss alike.
    const refusedBefore = await metric(env.healthUrl, 'tlsfleet_broker_auth_failures_total', { reason: 'issuer_not_trusted' });
    for (const url of [env.brokerUrl, wssUrlOf(env.broker)]) {
      const again = await tryConnect(url, { clientId: c.id, cert: c.chain, key: c.key, ca: env.ca });
      expect(again.outcome).toBe('refused');
      expect(again.code).toBe(5);
    }
    await metricUntil(env.healthUrl, 'tlsfleet_broker_auth_failures_total', { reason: 'issuer_not_trusted' }, (v) => v === refusedBefore + 2);
    await within(outputMatches(env.broker, /"client":"sensor-c".*"reason":"issuer_not_trusted".*connection refused/), 5000, 'C\'s refusal log line');

    // The stolen key signs a leaf whose AKI names the new intermediate: the chain it sends (via
    // the old intermediate) no longer matches, so TLS itself refuses it before any MQTT.
    const newKeyId = subjectKeyId(pemCertificates(newIntermediate)[0] as Buffer) ?? '';
    expect(newKeyId).toMatch(/^[0-9a-f]{40}$/);
    const forged = await clientCertificateSignedBy(env.dir, stolen, { name: 'forged', uri: 'spiffe://tlsfleet.local/device/sensor-x', serialHex: '5EC0DE01', subject: 'sensor-x', authorityKeyIdHex: newKeyId });
    expect((await openssl(['x509', '-noout', '-ext', 'authorityKeyIdentifier'], forged.certPem)).stdout.replace(/[:\s]/g, '').toLowerCase()).toContain(newKeyId);
    const forgedAttempt = await tryConnect(env.brokerUrl, { clientId: 'sensor-x', cert: forged.certPem + readFileSync(stolen.certFile, 'utf8'), key: forged.keyPem, ca: env.ca });
    expect(forgedAttempt.outcome).not.toBe('connected');
    expect(forgedAttempt.code).not.toBe(5);
    await metricUntil(env.healthUrl, 'tlsfleet_broker_handshake_failures_total', { reason: 'unknown_ca' }, (v) => v === 1);

    // C renews over mTLS with that same certificate (provisioning restarted, as the runbook says)
    // and connects with its new-intermediate certificate.
    provisioning = await restartProvisioning(env, provisioning);
    const keyC2 = newKey();
    const renewed = await postJson(`${env.url}/v1/renew`, { csr: await makeCsr(keyC2) }, { ca: env.ca, cert: c.chain, key: c.key });
    expect(renewed.status).toBe(201);
    const c2 = renewed.json();
    expect(new X509Certificate(c2.certificate).issuer).toBe(subjectOf(newIntermediate));
    const back = await tryConnect(env.brokerUrl, { clientId: c.id, cert: c2.chain, key: keyC2.privatePem, ca: env.ca });
    clients.push(back.client);
    expect(back.outcome).toBe('connected');

    // D's state holds a new-intermediate certificate now; N, on the new intermediate, was never touched.
    expect(d.identity?.serial).toBe(dNewSerial);
    expect(nClosed).toBe(false);
    expect(clientN.connected).toBe(true);
    await clientN.publishAsync('devices/sensor-n/telemetry', 'still here', { qos: 1 });
  }, 90_000);
});

/** The self-signed certificates of a PEM bundle, by SHA-256 fingerprint. */
function rootsOf(bundle: string): string[] {
  return pemCertificates(bundle)
    .map((der) => new X509Certificate(der))
    .filter((c) => c.ca && c.checkIssued(c))
    .map((c) => c.fingerprint256);
}

/**
 * The root rotation runbook of docs/operations.md ("Root rotation"), step by step, with real
 * processes: the CLI (new-root on an "offline" dir), provisioning, the broker, mqtt.js devices
 * holding the trust bundle their last renewal answered, and openssl.
 */
describe('root rotation runbook', () => {
  let env: FleetEnv;
  let oldOffline: string;
  const clients: MqttClient[] = [];
  let provisioning: Service;

  beforeAll(async () => {
    env = await startFleetEnv();
    provisioning = env.service;
    // The old root's key lives offline, as after any init.
    oldOffline = moveRootOffline(env, 'offline-old');
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    if (provisioning !== env?.service) await provisioning?.stop();
    await env?.stop();
  });

  /** mqtt.js with the given trust bundle, as a device holding it would connect. */
  const attempt = async (id: string, cert: string, key: string, ca: string) => {
    const a = await tryConnect(env.brokerUrl, { clientId: id, cert, key, ca });
    clients.push(a.client);
    return a;
  };
  const renew = async (cert: string, key: string, ca: string) => {
    const next = newKey();
    const res = await postJson(`${provisioning.url}/v1/renew`, { csr: await makeCsr(next) }, { ca, cert, key });
    expect(res.status).toBe(201);
    const body = res.json() as { certificate: string; chain: string; caBundle: string };
    return { ...body, key: next.privatePem };
  };
  const bundleFile = () => join(env.dataDir, 'ca-bundle.pem');
  const cliCode = (r: CliResult) => `${r.code} ${r.stderr}`;

  it('moves the fleet to a new root: devices learn it at renewal, new devices chain to it, the old root goes and its certificates fail the handshake', async () => {
    const oldRootFile = join(oldOffline, 'root-ca.pem');
    const oldRoot = readFileSync(oldRootFile, 'utf8');
    // A device's trust bundle is the one its enrollment answered: the old root only.
    const bundleA1 = env.ca;
    const a = await enrollAt(env, 'sensor-a');
    // O enrolls now and never renews: `ca install` must name it.
    await enrollAt(env, 'sensor-o');
    const clientA = await env.connect(a);
    clients.push(clientA);
    let aClosed = false;
    clientA.on('close', () => (aClosed = true));

    // Step 1 (offline): a new root in an empty directory; a second run refuses.
    const newOffline = join(env.dir, 'offline-new');
    const newRootFile = ok(await cli('ca', 'new-root', '--out', newOffline, '--lifetime', '2y'), 'ca new-root').stdout.trim();
    expect(newRootFile).toBe(join(newOffline, 'root-ca.pem'));
    expect(statSync(join(newOffline, 'root-ca.key')).mode & 0o777).toBe(0o600);
    expect((await openssl(['x509', '-in', newRootFile, '-noout', '-subject'])).stdout).toContain('CN = tlsfleet root CA, O = tlsfleet.local');
    expect(cliCode(await cli('ca', 'new-root', '--out', newOffline))).toMatch(/^1 .*not_empty/s);

    // Step 2 (serving side): trust it ahead of any intermediate under it; refusals change nothing.
    expect(cliCode(await cli('ca', 'trust-root', '--data-dir', env.dataDir, '--cert', join(env.dataDir, 'intermediate-ca.pem')))).toMatch(/^1 .*invalid_root/s);
    ok(await cli('ca', 'trust-root', '--data-dir', env.dataDir, '--cert', newRootFile), 'ca trust-root');
    const bothRoots = readFileSync(bundleFile(), 'utf8');
    expect(cliCode(await cli('ca', 'trust-root', '--data-dir', env.dataDir, '--cert', newRootFile))).toMatch(/^1 .*already_trusted/s);
    expect(readFileSync(bundleFile(), 'utf8')).toBe(bothRoots);
    await sighupBroker(env.broker);
    provisioning = await restartProvisioning(env, provisioning);
    // Factory images get this bundle as their bootstrap CA from now on.
    env.ca = bothRoots;

    // A renews (verifying provisioning with the bundle it holds) and gets both roots; its session stayed up.
    const a2 = await renew(a.chain, a.key, bundleA1);
    const newRootFp = new X509Certificate(readFileSync(newRootFile)).fingerprint256;
    const oldRootFp = new X509Certificate(oldRoot).fingerprint256;
    expect(rootsOf(a2.caBundle).sort()).toEqual([newRootFp, oldRootFp].sort());
    expect(aClosed).toBe(false);

    // Step 3: an intermediate under the new root (ca request / sign / install). O has not renewed since trust-root.
    let newIntermediate: string;
    let installed: CliResult;
    ({ newIntermediate, provisioning, installed } = await rotateIntermediate(env, { cert: newRootFile, key: join(newOffline, 'root-ca.key'), outDir: newOffline }, provisioning));
    expect(installed.stderr).toMatch(/WARNING: .* 1 device\(s\) have not renewed .*: sensor-o\n/);
    expect(readFileSync(join(env.dataDir, 'root-ca.pem'), 'utf8').trim()).toBe(readFileSync(newRootFile, 'utf8').trim());
    expect(aClosed).toBe(false);

    // New device B enrolls with the two-root bootstrap CA; its chain ends at the new root alone.
    const b = await enrollAt(env, 'sensor-b');
    expect((await openssl(['verify', '-CAfile', newRootFile, '-untrusted', b.chainFile, b.chainFile])).stdout).toContain(': OK');
    expect((await openssl(['verify', '-CAfile', oldRootFile, '-untrusted', b.chainFile, b.chainFile])).code).not.toBe(0);
    expect((await attempt(b.id, b.chain, b.key, bothRoots)).outcome).toBe('connected');

    // The broker's certificate is under the new root now: A's first bundle cannot verify it, its renewed one can.
    expect((await attempt(a.id, a2.chain, a2.key, bundleA1)).outcome).not.toBe('connected');
    expect((await attempt(a.id, a2.chain, a2.key, a2.caBundle)).outcome).toBe('connected');

    // A renews again, now under the new intermediate.
    const a3 = await renew(a2.chain, a2.key, a2.caBundle);
    expect(new X509Certificate(a3.certificate).issuer).toBe(subjectOf(newIntermediate));

    // Step 4: retire the old intermediate (--force: A's and O's first certificates last an hour).
    ok(await cli('ca', 'retire', '--data-dir', env.dataDir, '--force'), 'ca retire --force');
    await sighupBroker(env.broker);

    // Step 5: untrust the old root. Refused for the new root (it signs the current intermediate)
    // and, without --force, while old-root certificates live; both refusals change nothing.
    const beforeUntrust = readFileSync(bundleFile(), 'utf8');
    expect(cliCode(await cli('ca', 'untrust-root', '--data-dir', env.dataDir, '--cert', newRootFile))).toMatch(/^1 .*root_in_use/s);
    expect(cliCode(await cli('ca', 'untrust-root', '--data-dir', env.dataDir, '--cert', oldRootFile))).toMatch(/^1 .*until \d{4}-.*live_certificates/s);
    expect(readFileSync(bundleFile(), 'utf8')).toBe(beforeUntrust);
    ok(await cli('ca', 'untrust-root', '--data-dir', env.dataDir, '--cert', oldRootFile, '--force'), 'ca untrust-root --force');
    expect(rootsOf(readFileSync(bundleFile(), 'utf8'))).toEqual([newRootFp]);
    const handshakesBefore = await metric(env.healthUrl, 'tlsfleet_broker_handshake_failures_total', { reason: 'unknown_ca' });
    await sighupBroker(env.broker);
    provisioning = await restartProvisioning(env, provisioning);
    expect(rootsOf((await request(`${provisioning.url}/v1/ca`, { ca: a3.caBundle })).text())).toEqual([newRootFp]);

    // A certificate that chains only to the old root fails the TLS handshake itself (no CONNACK).
    const oldRootOnly = await attempt(a.id, a2.chain, a2.key, a3.caBundle);
    expect(oldRootOnly.outcome).not.toBe('connected');
    expect(oldRootOnly.code).not.toBe(5);
    await metricUntil(env.healthUrl, 'tlsfleet_broker_handshake_failures_total', { reason: 'unknown_ca' }, (v) => v > handshakesBefore);
    expect((await openssl(['verify', '-CAfile', bundleFile(), a.chainFile])).code).not.toBe(0);

    // B and the renewed A still connect.
    expect((await attempt(b.id, b.chain, b.key, a3.caBundle)).outcome).toBe('connected');
    expect((await attempt(a.id, a3.chain, a3.key, a3.caBundle)).outcome).toBe('connected');
  }, 90_000);
});
