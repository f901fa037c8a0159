import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollAt, type DeviceCredentials } from './harness/broker-env.js';
import { startProvisioningProcess, type Service } from './harness/cli.js';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request, type HttpAnswer } from './harness/https-client.js';
import { makeCsr, newKey, type TestKey } from './harness/csr.js';
import { sample } from './harness/broker-probe.js';
import { openssl } from './harness/openssl.js';

const codeOf = (res: HttpAnswer) => (res.status >= 400 ? `${res.status} ${res.json().error.code}` : String(res.status));

// Issue 23, in-band renewal: a broker relays a device's renewal (POST /v1/relay/renew) with its
// own service identity, accepted only from the services named by --renewal-relay.
describe('renewal relayed by a broker', () => {
  let env: ProvisioningEnv;
  let plain: Service; // the same data dir, without --renewal-relay
  let relay: DeviceCredentials;
  let stranger: DeviceCredentials; // a service that is not a relay

  const relayRenew = (body: object, as: DeviceCredentials | null = relay, url = env.url) =>
    postJson(`${url}/v1/relay/renew`, body, { ca: env.ca, ...(as ? { cert: as.chain, key: as.key } : {}) });
  const admin = (path: string, method = 'GET') =>
    request(`${env.url}${path}`, { method, ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}`, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
  const csrFor = (key: TestKey = newKey()) => makeCsr(key);

  beforeAll(async () => {
    env = await startProvisioningEnv({ serviceArgs: ['--renewal-relay', 'relay-1', '--renewal-relay', 'relay-spare'] });
    plain = await startProvisioningProcess(env.dataDir);
    relay = await enrollAt(env, 'relay-1', { kind: 'service' });
    stranger = await enrollAt(env, 'backend-1', { kind: 'service' });
  });
  afterAll(async () => {
    await plain?.stop();
    await env?.stop();
  });

  it('renews the device of the session for a configured relay: a new certificate for the same identity and the CSR key, chained to the bundle', async () => {
    const device = await enrollAt(env, 'relayed-1');
    const key = newKey();
    const res = await relayRenew({ device: 'relayed-1', serial: device.serial, csr: await csrFor(key) });
    expect(res.status, res.text()).toBe(201);
    const body = res.json();
    expect(body.deviceId).toBe('relayed-1');
    expect(body.serial).not.toBe(device.serial);
    const cert = new X509Certificate(body.certificate);
    expect(cert.subjectAltName).toContain('/device/relayed-1');
    expect(cert.publicKey.export({ type: 'spki', format: 'der' }).equals(createPublicKey(key.privateKey).export({ type: 'spki', format: 'der' }))).toBe(true);
    writeFileSync(join(env.dir, 'relayed-1.chain.pem'), body.chain);
    writeFileSync(join(env.dir, 'relayed-1.pem'), body.certificate);
    const verified = await openssl(['verify', '-CAfile', join(env.dataDir, 'ca-bundle.pem'), '-untrusted', join(env.dir, 'relayed-1.chain.pem'), join(env.dir, 'relayed-1.pem')]);
    expect(verified.stdout + verified.stderr).toContain('relayed-1.pem: OK');
    // Recorded as the device's renewal: its current certificate, and the audit's renew entry.
    expect((await admin('/v1/devices/relayed-1')).json().currentSerial).toBe(body.serial);
    const audit = (await admin('/v1/audit?device=relayed-1')).json();
    expect(JSON.stringify(audit)).toMatch(/"renew"/);
    // Timed under its own operation label.
    const metrics = (await request(`${env.url}/metrics`, { ca: env.ca })).text();
    expect(sample(metrics, 'tlsfleet_provisioning_issuance_duration_seconds_count', { operation: 'renew_relayed' })).toBeGreaterThanOrEqual(1);
  });

  it('replays a lost answer: the same session certificate and the same new key get the same certificate', async () => {
    const device = await enrollAt(env, 'relayed-2');
    const csr = await csrFor();
    const first = await relayRenew({ device: 'relayed-2', serial: device.serial, csr });
    const again = await relayRenew({ device: 'relayed-2', serial: device.serial, csr });
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.json().serial).toBe(first.json().serial);
    // Another key on the superseded certificate is refused.
    expect(codeOf(await relayRenew({ device: 'relayed-2', serial: device.serial, csr: await csrFor() }))).toBe('403 superseded');
  });

  it('refuses callers that are not a configured relay, before reading anything', async () => {
    const device = await enrollAt(env, 'relayed-3');
    const body = { device: 'relayed-3', serial: device.serial, csr: await csrFor() };
    expect(codeOf(await relayRenew(body, null))).toBe('401 unauthorized');
    expect(codeOf(await relayRenew(body, stranger))).toBe('403 forbidden');
    expect(codeOf(await relayRenew(body, device))).toBe('403 forbidden'); // a device cannot relay for itself
    expect(codeOf(await relayRenew(body, relay, plain.url))).toBe('403 forbidden'); // a service without --renewal-relay
    expect((await admin('/v1/devices/relayed-3')).json().currentSerial).toBe(device.serial);
  });

  it('refuses a configured relay whose own certificate was revoked', async () => {
    const spare = await enrollAt(env, 'relay-spare', { kind: 'service' });
    const device = await enrollAt(env, 'relayed-7');
    expect((await admin(`/v1/certificates/${spare.serial}/revoke`, 'POST')).status).toBe(200);
    expect(codeOf(await relayRenew({ device: 'relayed-7', serial: device.serial, csr: await csrFor() }, spare))).toBe('403 revoked');
    expect((await admin('/v1/devices/relayed-7')).json().currentSerial).toBe(device.serial);
  });

  it('renews only the identity the session certificate was issued to', async () => {
    const a = await enrollAt(env, 'relayed-4');
    await enrollAt(env, 'relayed-5');
    expect(codeOf(await relayRenew({ device: 'relayed-5', serial: a.serial, csr: await csrFor() }))).toBe('403 forbidden');
    expect(codeOf(await relayRenew({ device: 'relayed-4', serial: 'abcdef0123', csr: await csrFor() }))).toBe('403 forbidden');
    expect((await admin('/v1/devices/relayed-4')).json().currentSerial).toBe(a.serial);
  });

  it('answers typed errors for bad bodies, revoked devices and the old key, as /v1/renew does', async () => {
    const device = await enrollAt(env, 'relayed-6');
    expect(codeOf(await relayRenew({ serial: device.serial, csr: await csrFor() }))).toBe('400 invalid_request');
    expect(codeOf(await relayRenew({ device: 'relayed-6', serial: 'not hex', csr: await csrFor() }))).toBe('400 invalid_request');
    expect(codeOf(await relayRenew({ device: 'relayed-6', serial: device.serial, csr: 'nope' }))).toBe('400 invalid_csr');
    // The session's own key again: no fresh key.
    const own = await makeCsr({ privateKey: createPrivateKey(device.key), privatePem: device.key });
    expect(codeOf(await relayRenew({ device: 'relayed-6', serial: device.serial, csr: own }))).toBe('400 key_rejected');
    expect((await admin('/v1/devices/relayed-6/revoke', 'POST')).status).toBe(200);
    expect(codeOf(await relayRenew({ device: 'relayed-6', serial: device.serial, csr: await csrFor() }))).toBe('403 revoked');
  });
});
