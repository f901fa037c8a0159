import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { mintToken, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { inbox, within, type Inbox } from './harness/broker-probe.js';
import { runCli, startService, type Service } from './harness/cli.js';

// The reference agent's heartbeat comes right after each connect, not one interval later:
// with --heartbeat 1h, any heartbeat a watcher sees within the test came from a connect.

describe('tlsfleet device run heartbeats', () => {
  let env: FleetEnv;
  let agent: Service | undefined;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    env = await startFleetEnv();
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
    for (const c of clients) c.end(true);
    await env?.stop();
  });

  it('publishes one right after it connects, and again right after it reconnects', async () => {
    const state = join(env.dir, 'agents', 'hb-1');
    const enrolled = await runCli(['device', 'enroll', '--token', await mintToken(env, 'hb-1', 'device', 3600), '--provisioning', env.url, '--state', state, '--bootstrap-ca', join(env.dataDir, 'ca-bundle.pem')]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const watcher = await env.connect(await env.enroll('hb-watch', { kind: 'service' }));
    clients.push(watcher);
    const box: Inbox = inbox(watcher);
    await watcher.subscribeAsync('devices/hb-1/heartbeat', { qos: 1 });

    agent = await startService(['device', 'run', '--state', state, '--broker', env.brokerUrl, '--heartbeat', '1h', '--reconnect-min', '1s'], /"event":"connected"/);
    const first = await within(box.next(() => true), 10_000, 'the first heartbeat');
    expect(JSON.parse(first.payload)).toMatchObject({ seq: 0 });

    // Take the session over with the agent's own identity, then let go: the agent reconnects.
    const identity = JSON.parse(readFileSync(join(state, 'identity.json'), 'utf8')) as { chainPem: string; privateKeyPem: string };
    const intruder = await env.connect({ id: 'hb-1', serial: '', chain: identity.chainPem, key: identity.privateKeyPem, chainFile: '', keyFile: '' });
    await intruder.endAsync();
    const second = await within(box.next((m) => (JSON.parse(m.payload) as { seq: number }).seq === 1), 30_000, 'the heartbeat after the reconnect');
    expect(second.topic).toBe('devices/hb-1/heartbeat');
  });
});
