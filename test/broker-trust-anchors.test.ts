import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '@tlsfleet/broker';
import { pemX509Certificates } from '@tlsfleet/common';
import { enrollAt, type DeviceCredentials } from './harness/broker-env.js';
import { metric, tryConnect } from './harness/broker-probe.js';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';

const MINUTE_MS = 60_000;

/**
 * The broker hands its intermediate to TLS as a trust anchor, so OpenSSL no longer checks the
 * intermediate's validity period, nor the root's (broker/src/trust/trust-anchors.ts). The broker
 * checks them itself on every connection: here on a broker in this process whose clock the
 * test sets, with a real device certificate, which OpenSSL judges on the real clock.
 */
describe('broker: validity of the anchored intermediate, checked per connection', () => {
  let env: ProvisioningEnv;
  let device: DeviceCredentials;
  let intermediate: X509Certificate;
  let broker: RunningBroker;
  let clock = Date.now();

  beforeAll(async () => {
    env = await startProvisioningEnv();
    device = await enrollAt(env, 'clocked-1', { certTtl: '1h' });
    const bundle = pemX509Certificates(readFileSync(join(env.dataDir, 'ca-bundle.pem'), 'utf8'));
    intermediate = bundle.find((c) => c.ca && c.subject !== c.issuer)!;
    broker = await startBroker({ dataDir: env.dataDir, host: '127.0.0.1', port: 0, healthPort: 0, logger: pino({ level: 'silent' }), now: () => clock });
  });
  afterAll(async () => {
    await broker?.close(1000);
    await env?.stop();
  });

  const attempt = () => tryConnect(broker.url, { clientId: device.id, cert: device.chain, key: device.key, ca: env.ca });
  const failures = async (reason: string) => ({
    handshake: await metric(broker.healthUrl!, 'tlsfleet_broker_handshake_failures_total', { reason }),
    auth: await metric(broker.healthUrl!, 'tlsfleet_broker_auth_failures_total', { reason }),
  });

  it('accepts the device while its issuing CA is within its validity period', async () => {
    clock = Date.now();
    const a = await attempt();
    expect(a.outcome).toBe('connected');
    a.client.end(true);
  });

  it('refuses it before MQTT once the intermediate has expired, though OpenSSL accepted the chain', async () => {
    clock = Date.parse(intermediate.validTo) + MINUTE_MS;
    const a = await attempt();
    // No CONNACK: the connection ends at the identity layer, as a handshake failure would.
    expect(a.outcome).not.toBe('connected');
    expect(a.code).not.toBe(5);
    expect(await failures('expired')).toEqual({ handshake: 1, auth: 0 });
  });

  it('refuses it before the intermediate is valid, when nothing else about the device is wrong', async () => {
    // Before the intermediate's notBefore the device certificate itself is not expired: only
    // the issuer's validity can refuse it.
    clock = Date.parse(intermediate.validFrom) - MINUTE_MS;
    const a = await attempt();
    expect(a.outcome).not.toBe('connected');
    expect(await failures('not_yet_valid')).toEqual({ handshake: 1, auth: 0 });
  });
});
