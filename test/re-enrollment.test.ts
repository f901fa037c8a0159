import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleepUntil } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { runCli, startService } from './harness/cli.js';
import { revokeDevice } from './harness/device-env.js';

// docs/concepts.md, lifecycle: `device enroll --token T` on a state dir whose identity was
// revoked or has expired enrolls afresh; a live identity is still a no-op.

let env: FleetEnv;
beforeAll(async () => {
  env = await startFleetEnv();
});
afterAll(async () => {
  await env.stop();
});

const stateOf = (id: string) => join(env.dir, 'agents', id);
const storedSerial = (id: string) => (JSON.parse(readFileSync(join(stateOf(id), 'identity.json'), 'utf8')) as { serial: string }).serial;

async function enroll(id: string, token: string) {
  const r = await runCli(['device', 'enroll', '--token', token, '--provisioning', env.url, '--state', stateOf(id), '--bootstrap-ca', env.caFile]);
  const events = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...r, events };
}

/** `device run` until its first `connected` line: the serial it connected with. */
async function connectsWith(id: string): Promise<string> {
  const agent = await startService(['device', 'run', '--state', stateOf(id), '--broker', env.brokerUrl, '--heartbeat', '1s'], /"event":"connected","serial":"([0-9a-f]+)"/);
  try {
    return agent.url;
  } finally {
    expect(await agent.stop()).toBe(0);
  }
}

describe('device enroll on a state dir that already holds an identity', () => {
  it('revoked: enrolls afresh with the new token, and device run connects with the new serial', async () => {
    const first = await enroll('re-revoked', await mintToken(env, 're-revoked', 'device', 3600));
    expect(first.code, first.stderr).toBe(0);
    const old = storedSerial('re-revoked');
    await revokeDevice(env, 're-revoked');

    const again = await enroll('re-revoked', await mintToken(env, 're-revoked', 'device', 3600));
    expect(again.code, again.stderr).toBe(0);
    expect(again.events.map((e) => e.event)).toEqual(['reenrolling', 'enrolled']);
    expect(again.events[0]).toMatchObject({ serial: old, reason: 'revoked' });
    expect(again.events[1]).toMatchObject({ deviceId: 're-revoked', replaced: old });
    const fresh = storedSerial('re-revoked');
    expect(fresh).not.toBe(old);
    expect(again.events[1]!.serial).toBe(fresh);
    expect(await connectsWith('re-revoked')).toBe(fresh);
  });

  it('expired: enrolls afresh with the new token, and device run connects with the new serial', async () => {
    const first = await enroll('re-expired', await mintToken(env, 're-expired', 'device', 2));
    expect(first.code, first.stderr).toBe(0);
    const old = storedSerial('re-expired');
    const notAfter = Date.parse(first.events[0]!.notAfter as string);
    await sleepUntil(Math.max(0, notAfter - Date.now() + 50)); // the certificate's own end, not a guess

    const again = await enroll('re-expired', await mintToken(env, 're-expired', 'device', 3600));
    expect(again.code, again.stderr).toBe(0);
    expect(again.events.map((e) => e.event)).toEqual(['reenrolling', 'enrolled']);
    expect(again.events[0]).toMatchObject({ serial: old, reason: 'expired' });
    const fresh = storedSerial('re-expired');
    expect(fresh).not.toBe(old);
    expect(await connectsWith('re-expired')).toBe(fresh);
  });

  it('live: a no-op that keeps the identity and does not spend the new token', async () => {
    const first = await enroll('re-live', await mintToken(env, 're-live', 'device', 3600));
    expect(first.code, first.stderr).toBe(0);
    const old = storedSerial('re-live');
    const unused = await mintToken(env, 're-live', 'device', 3600);

    const again = await enroll('re-live', unused);
    expect(again.code, again.stderr).toBe(0);
    expect(again.events).toEqual([expect.objectContaining({ event: 'already-enrolled', serial: old })]);
    expect(again.events[0]).not.toHaveProperty('revocationUnknown');
    expect(storedSerial('re-live')).toBe(old);
    // The token still works: it was not spent by the no-op.
    const elsewhere = await runCli(['device', 'enroll', '--token', unused, '--provisioning', env.url, '--state', stateOf('re-live-copy'), '--bootstrap-ca', env.caFile]);
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
  });

  it('revoked, but the new token is refused: the old identity files stay as they were', async () => {
    const first = await enroll('re-refused', await mintToken(env, 're-refused', 'device', 3600));
    expect(first.code, first.stderr).toBe(0);
    const before = readFileSync(join(stateOf('re-refused'), 'identity.json'), 'utf8');
    await revokeDevice(env, 're-refused');
    const again = await enroll('re-refused', 'tf_not-a-token');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/invalid_token/);
    expect(readFileSync(join(stateOf('re-refused'), 'identity.json'), 'utf8')).toBe(before);
  });

  // Last: it stops the provisioning service.
  it('when the service cannot be asked, a stored identity is kept and the reason is said', async () => {
    const first = await enroll('re-unknown', await mintToken(env, 're-unknown', 'device', 3600));
    expect(first.code, first.stderr).toBe(0);
    const old = storedSerial('re-unknown');
    await env.service.stop();
    const again = await enroll('re-unknown', 'tf_unused');
    expect(again.code, again.stderr).toBe(0);
    expect(again.events).toEqual([expect.objectContaining({ event: 'already-enrolled', serial: old, revocationUnknown: expect.objectContaining({ code: 'connection_refused' }) })]);
    expect(storedSerial('re-unknown')).toBe(old);
  });
});
