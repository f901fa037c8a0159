import { createPrivateKey, createPublicKey } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { mintToken, wssUrlOf, type DeviceCredentials } from './harness/broker-env.js';
import { closedAt, grantedQos, httpGet, metric, outputMatches, tryConnect, within } from './harness/broker-probe.js';
import { logged, loggedField, runCli, startService, type Service } from './harness/cli.js';
import { makeCsr, newKey } from './harness/csr.js';
import { tempDir } from './harness/temp-dir.js';
import { openssl } from './harness/openssl.js';
import { postJson } from './harness/https-client.js';
import { freshCsr, healthUrlOf, renewalProbe, startRenewalEnv, type RenewalEnv } from './harness/renewal-env.js';

// In-band renewal over MQTT with real processes: provisioning started with
// `--renewal-relay broker-relay`, brokers relaying with that service identity
// (`--relay-provisioning URL --relay-identity DIR`), devices on mqtt.js with their certificates.

const renewTopic = (id: string) => `$tlsfleet/certificates/${id}/renew`;

/** What openssl reads in a certificate: its SAN and its public key. */
async function certificateFacts(pem: string): Promise<{ san: string; publicKey: string }> {
  const san = await openssl(['x509', '-noout', '-ext', 'subjectAltName'], pem);
  const key = await openssl(['x509', '-noout', '-pubkey'], pem);
  expect(san.code).toBe(0);
  expect(key.code).toBe(0);
  return { san: san.stdout.replace(/^.*\n/, '').trim(), publicKey: key.stdout.trim() };
}

describe('in-band renewal through a broker that relays to provisioning', () => {
  let r: RenewalEnv;
  let broker: Service;
  let healthUrl: string;

  beforeAll(async () => {
    r = await startRenewalEnv();
    broker = await r.startBroker([...r.relayArgs, '--ws-port', '0']);
    healthUrl = healthUrlOf(broker);
  }, 90_000);
  afterAll(async () => {
    await r?.stop();
  });

  it('issues a certificate for the session\'s own identity with the new key, and the device connects with it', async () => {
    const dev = await r.enroll('ib-1');
    const client = await r.connect(broker, dev);
    const probe = await renewalProbe(client, 'ib-1');
    const { key, csr } = await freshCsr();
    await probe.send({ requestId: 'first-1', csr });
    const answer = await within(probe.answer('first-1'), 15_000, 'the renewal answer');
    expect(answer.error).toBeUndefined();
    expect(answer).toMatchObject({ requestId: 'first-1', deviceId: 'ib-1' });
    expect(answer.serial).not.toBe(dev.serial);
    const before = await certificateFacts(dev.chain);
    const after = await certificateFacts(answer.certificate as string);
    expect(after.san).toBe(before.san);
    expect(after.san).toMatch(/^URI:spiffe:\/\/[^/]+\/device\/ib-1$/);
    expect(after.publicKey).toBe(createPublicKey(key.privateKey).export({ type: 'spki', format: 'pem' }).toString().trim());
    expect(after.publicKey).not.toBe(before.publicKey);
    const m = probe.box.messages.find((x) => x.topic === '$tlsfleet/certificates/ib-1/renewed');
    expect(m).toMatchObject({ qos: 1, retain: false });

    const renewed: DeviceCredentials = { ...dev, serial: answer.serial as string, chain: answer.chain as string, key: key.privatePem };
    const closed = closedAt(client);
    const next = await r.connect(broker, renewed);
    expect(next.connected).toBe(true);
    await closed; // the same client id: the older session is taken over
    expect(await metric(healthUrl, 'tlsfleet_broker_inband_renewals_total', { result: 'issued' })).toBeGreaterThanOrEqual(1);
    const relayExpiry = await metric(healthUrl, 'tlsfleet_broker_relay_identity_expiry_seconds', { identity: 'broker-relay' });
    expect(relayExpiry).toBeGreaterThan(3000);
    expect(relayExpiry).toBeLessThanOrEqual(3600);
    // The child's stdout may reach us after the answer did.
    await within(outputMatches(broker, /"requestId":"first-1"/), 5_000, 'the request logged');
    const line = broker.output().split('\n').find((l) => l.includes('"requestId":"first-1"')) ?? '';
    expect(JSON.parse(line)).toMatchObject({ msg: 'in-band renewal', client: 'ib-1', serial: dev.serial, result: 'issued', newSerial: answer.serial });
    expect(broker.output()).not.toContain('BEGIN CERTIFICATE REQUEST');
  });

  it('renews a device connected over MQTT over WebSockets the same way', async () => {
    const dev = await r.enroll('ib-wss');
    const client = await mqtt.connectAsync(wssUrlOf(broker), { clientId: 'ib-wss', cert: dev.chain, key: dev.key, ca: r.prov.ca, protocolVersion: 4, reconnectPeriod: 0 }, false);
    try {
      const probe = await renewalProbe(client, 'ib-wss');
      await probe.send({ requestId: 'over-wss', csr: (await freshCsr()).csr });
      const answer = await within(probe.answer('over-wss'), 15_000, 'the answer over wss');
      expect(answer.error).toBeUndefined();
      expect(answer.deviceId).toBe('ib-wss');
    } finally {
      client.end(true);
    }
  });

  it('refuses a CSR for the key the session already uses: key_rejected', async () => {
    const dev = await r.enroll('ib-2');
    const probe = await renewalProbe(await r.connect(broker, dev), 'ib-2');
    await probe.send({ requestId: 'same-key', csr: await makeCsr({ privateKey: createPrivateKey(dev.key), privatePem: dev.key }) });
    expect((await within(probe.answer('same-key'), 15_000, 'the answer')).error?.code).toBe('key_rejected');
  });

  it('answers a second request of the same identity while the first is in flight: rate_limited', async () => {
    const dev = await r.enroll('ib-3');
    const probe = await renewalProbe(await r.connect(broker, dev), 'ib-3');
    const [a, b] = await Promise.all([freshCsr(), freshCsr()]);
    await Promise.all([probe.send({ requestId: 'one', csr: a.csr }), probe.send({ requestId: 'two', csr: b.csr })]);
    const answers = await within(Promise.all([probe.answer('one'), probe.answer('two')]), 15_000, 'both answers');
    expect(answers[0].error).toBeUndefined();
    expect(answers[1].error?.code).toBe('rate_limited');
  });

  it.each([
    ['malformed JSON', '{"requestId":"x",', null, 'invalid_request'],
    ['a request without requestId', JSON.stringify({ csr: '-----BEGIN CERTIFICATE REQUEST-----' }), null, 'invalid_request'],
    ['a request over 16 KiB', JSON.stringify({ requestId: 'big', csr: 'x'.repeat(17 * 1024) }), null, 'payload_too_large'],
    ['a csr that is not a string', JSON.stringify({ requestId: 'num', csr: 5 }), 'num', 'invalid_request'],
  ])('answers %s with a typed error and keeps the session', async (_what, payload, requestId, code) => {
    const id = `ib-bad-${code}-${requestId ?? 'null'}`.replace(/_/g, '-');
    const dev = await r.enroll(id);
    const client = await r.connect(broker, dev);
    const probe = await renewalProbe(client, id);
    await probe.send(payload);
    const answer = await within(probe.answer(requestId), 10_000, 'the refusal');
    expect(answer.error?.code).toBe(code);
    expect(client.connected).toBe(true);
    await client.publishAsync(`devices/${id}/still-here`, 'x', { qos: 1 });
  });

  it('lets no identity use another identity\'s renewal topics, nor any wildcard that reaches them', async () => {
    const victim = await r.enroll('ib-victim');
    const victimProbe = await renewalProbe(await r.connect(broker, victim), 'ib-victim');
    const thiefCreds = await r.enroll('ib-thief');
    const thief = await r.connect(broker, thiefCreds);
    const service = await r.connect(broker, await r.enroll('ib-service', { kind: 'service' }));
    for (const c of [thief, service]) {
      for (const filter of ['$tlsfleet/certificates/ib-victim/renewed', '$tlsfleet/certificates/+/renewed', '$tlsfleet/certificates/#', '$tlsfleet/#', '$tlsfleet/certificates/ib-victim/renew']) {
        expect(await grantedQos(c, filter), filter).toBe(128);
      }
    }
    // Nor have the broker send one on its behalf as a will.
    const will = await tryConnect(broker.url, { clientId: 'ib-thief', cert: thiefCreds.chain, key: thiefCreds.key, ca: r.prov.ca, will: { topic: renewTopic('ib-thief'), payload: Buffer.from('{}'), qos: 1, retain: false } });
    expect(will.outcome).toBe('refused');
    expect(will.code).toBe(5);
    // Nobody may even read its own request topic: a request is delivered to no one.
    expect(await grantedQos(thief, renewTopic('ib-thief'))).toBe(128);
    const closed = closedAt(thief);
    thief.publish(renewTopic('ib-victim'), JSON.stringify({ requestId: 'stolen', csr: (await freshCsr()).csr }), { qos: 1 });
    await within(closed, 10_000, 'the thief\'s connection closed');
    await within(outputMatches(broker, /"client":"ib-thief".*publish refused/), 5_000, 'the refusal logged');
    expect(victimProbe.box.messages.filter((m) => m.payload.includes('stolen'))).toEqual([]);
  });

  it('takes a QoS 0 request too (never the publish relay\'s), and never keeps a retained one', async () => {
    const dev = await r.enroll('ib-q0');
    const client = await r.connect(broker, dev);
    const probe = await renewalProbe(client, 'ib-q0');
    const retainedBefore = await metric(healthUrl, 'tlsfleet_broker_retained_messages');
    client.publish(renewTopic('ib-q0'), JSON.stringify({ requestId: 'qos0', csr: (await freshCsr()).csr }), { qos: 0 });
    expect((await within(probe.answer('qos0'), 15_000, 'the QoS 0 request\'s answer')).error).toBeUndefined();
    await client.publishAsync(renewTopic('ib-q0'), JSON.stringify({ requestId: 'kept', csr: 'x' }), { qos: 1, retain: true });
    expect((await within(probe.answer('kept'), 10_000, 'the retained request\'s answer')).error?.code).toBe('invalid_csr');
    expect(await metric(healthUrl, 'tlsfleet_broker_retained_messages')).toBe(retainedBefore);
  });

  it('answers not_found when provisioning does not take this broker as a relay, and says why in the broker log', async () => {
    const state = join(r.prov.dir, 'not-a-relay');
    const token = await mintToken(r.prov, 'not-a-relay', 'service', 3600);
    const enrolled = await runCli(['device', 'enroll', '--token', token, '--provisioning', r.prov.url, '--state', state, '--bootstrap-ca', join(r.prov.dataDir, 'ca-bundle.pem')]);
    expect(enrolled.code).toBe(0);
    const unnamed = await r.startBroker(['--relay-provisioning', r.prov.url, '--relay-identity', state]);
    const dev = await r.enroll('ib-unnamed');
    const probe = await renewalProbe(await r.connect(unnamed, dev), 'ib-unnamed');
    await probe.send({ requestId: 'refused-relay', csr: (await freshCsr()).csr });
    expect((await within(probe.answer('refused-relay'), 15_000, 'the answer')).error?.code).toBe('not_found');
    await within(outputMatches(unnamed, /renewal relay refused by provisioning/), 5_000, 'the broker\'s log line');
  });

  it('answers `revoked` for a device revoked at provisioning that the broker has not cut yet', async () => {
    // A broker on a copy of the data dir without --crl-url never learns of the revocation:
    // provisioning, asked through the relay, still refuses.
    const copy = join(r.prov.dir, 'stale-copy');
    cpSync(r.prov.dataDir, copy, { recursive: true });
    const stale = await r.startBroker(r.relayArgs, copy);
    const dev = await r.enroll('ib-revoked');
    const client = await r.connect(stale, dev);
    const probe = await renewalProbe(client, 'ib-revoked');
    const res = await postJson(`${r.prov.url}/v1/devices/ib-revoked/revoke`, {}, { ca: r.prov.ca, headers: { authorization: `Bearer ${r.prov.adminToken}` } });
    expect(res.status).toBe(200);
    await probe.send({ requestId: 'after-revoke', csr: (await freshCsr()).csr });
    expect((await within(probe.answer('after-revoke'), 15_000, 'the answer')).error?.code).toBe('revoked');
  });
});

describe('a broker with no renewer', () => {
  let r: RenewalEnv;
  let broker: Service;

  beforeAll(async () => {
    r = await startRenewalEnv();
    broker = await r.startBroker([]);
  }, 90_000);
  afterAll(async () => {
    await r?.stop();
  });

  it('answers not_found at once, so the device renews over HTTPS', async () => {
    const dev = await r.enroll('nr-1');
    const probe = await renewalProbe(await r.connect(broker, dev), 'nr-1');
    await probe.send({ requestId: 'nr', csr: (await freshCsr()).csr });
    const answer = await within(probe.answer('nr'), 5_000, 'the answer');
    expect(answer).toMatchObject({ requestId: 'nr', error: { code: 'not_found' } });
    expect(await metric(healthUrlOf(broker), 'tlsfleet_broker_inband_renewals_total', { result: 'not_found' })).toBe(1);
    expect((await httpGet(`${healthUrlOf(broker)}/metrics`)).body).not.toMatch(/^tlsfleet_broker_relay_identity_expiry_seconds/m);
  });

  it('with a relay whose provisioning cannot be reached: overloaded, with a time to retry', async () => {
    const unreachable = await r.startBroker(['--relay-provisioning', 'https://127.0.0.1:1', '--relay-identity', r.relayState]);
    const dev = await r.enroll('nr-2');
    const probe = await renewalProbe(await r.connect(unreachable, dev), 'nr-2');
    await probe.send({ requestId: 'down', csr: (await freshCsr()).csr });
    const answer = await within(probe.answer('down'), 15_000, 'the answer');
    expect(answer.error?.code).toBe('overloaded');
    expect(answer.error?.retryAfter).toBeGreaterThan(0);
    await within(outputMatches(unreachable, /renewal relay: provisioning not reachable/), 5_000, 'the log line');
  });

  it('refuses bad relay flags at start with exit 2', async () => {
    const missing = join(r.prov.dir, 'no-such-dir');
    const notEnrolled = join(r.prov.dir, 'empty-state');
    mkdirSync(notEnrolled, { mode: 0o700 });
    const file = join(r.prov.dir, 'a-file');
    writeFileSync(file, 'x');
    const cases: [string[], RegExp][] = [
      [['--relay-provisioning', 'http://127.0.0.1:1', '--relay-identity', r.relayState], /https/],
      [['--relay-provisioning', 'not a url', '--relay-identity', r.relayState], /https/],
      [['--relay-provisioning', r.prov.url], /--relay-identity/],
      [['--relay-identity', r.relayState], /--relay-provisioning/],
      [['--relay-provisioning', r.prov.url, '--relay-identity', missing], /not a directory/],
      [['--relay-provisioning', r.prov.url, '--relay-identity', file], /not a directory/],
      [['--relay-provisioning', r.prov.url, '--relay-identity', notEnrolled], /holds no identity/],
    ];
    for (const [flags, message] of cases) {
      const res = await runCli(['broker', '--data-dir', r.prov.dataDir, '--port', '0', ...flags]);
      expect(res.code, flags.join(' ')).toBe(2);
      expect(res.stderr, flags.join(' ')).toMatch(message);
    }
  });
});

describe('tlsfleet dev', () => {
  it('renews in-band through its in-process provisioning', async () => {
    const dir = tempDir('tlsfleet-dev-inband-');
    const dataDir = join(dir.path, 'data');
    const dev = await startService(['dev', '--data-dir', dataDir, '--port', '0', '--broker-port', '0', '--health-port', '0'], logged('dev ready', 'broker'));
    try {
      const ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
      const token = await runCli(['token', '--data-dir', dataDir, '--device', 'dv-1']);
      expect(token.code).toBe(0);
      const key = newKey();
      const enrolled = await postJson(`${loggedField(dev, 'dev ready', 'provisioning')}/v1/enroll`, { token: token.stdout.trim(), csr: await makeCsr(key) }, { ca });
      expect(enrolled.status).toBe(201);
      const client = await mqtt.connectAsync(dev.url, { clientId: 'dv-1', cert: enrolled.json().chain, key: key.privatePem, ca, protocolVersion: 4, reconnectPeriod: 0 }, false);
      try {
        const probe = await renewalProbe(client, 'dv-1');
        await probe.send({ requestId: 'dev-1', csr: (await freshCsr()).csr });
        const answer = await within(probe.answer('dev-1'), 15_000, 'the answer');
        expect(answer.error).toBeUndefined();
        expect(answer.deviceId).toBe('dv-1');
        expect(answer.serial).not.toBe(enrolled.json().serial);
        await within(outputMatches(dev, /"relay":"in-process"/), 5_000, 'provisioning\'s log line');
      } finally {
        client.end(true);
      }
    } finally {
      expect(await dev.stop()).toBe(0);
      dir.cleanup();
    }
  }, 60_000);
});
