import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { runCli, startService, type Service } from './harness/cli.js';

let env: FleetEnv;
beforeAll(async () => {
  env = await startFleetEnv();
});
afterAll(async () => {
  await env.stop();
});

const stateOf = (id: string) => join(env.dir, 'agents', id);
const caFile = () => join(env.dataDir, 'ca-bundle.pem');

async function enrollCli(id: string, token: string, faultAt?: string) {
  return runCli(['device', 'enroll', '--token', token, '--provisioning', env.url, '--state', stateOf(id), '--bootstrap-ca', caFile()], {
    env: faultAt ? { TLSFLEET_FAULT_KILL_AT: faultAt } : {},
  });
}

/** `tlsfleet device run` until it prints its first `connected` line; resolves with the serial it connected with. */
async function runUntilConnected(id: string): Promise<{ agent: Service; serial: string }> {
  const agent = await startService(['device', 'run', '--state', stateOf(id), '--broker', env.brokerUrl, '--heartbeat', '1s'], /"event":"connected","serial":"([0-9a-f]+)"/);
  return { agent, serial: agent.url };
}

describe('tlsfleet device', () => {
  it('enroll then run: connects, and a second enroll on the same state is a no-op', async () => {
    const token = await mintToken(env, 'agent-1', 'device', 3600);
    const first = await enrollCli('agent-1', token);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ event: 'enrolled', deviceId: 'agent-1' });
    expect(first.stdout + first.stderr).not.toMatch(/PRIVATE KEY|tf_/);
    const again = await enrollCli('agent-1', token);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ event: 'already-enrolled', deviceId: 'agent-1' });
    const { agent } = await runUntilConnected('agent-1');
    expect(await agent.stop()).toBe(0);
    expect(agent.output()).toMatch(/"event":"stopped","status":0/);
    expect(agent.output()).not.toMatch(/PRIVATE KEY/);
  });

  it('explains missing flags and bad values with usage (exit 2)', async () => {
    const r = await runCli(['device', 'run', '--state', stateOf('x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing --broker/);
    const k = await runCli(['device', 'enroll', '--token', 't', '--provisioning', env.url, '--state', stateOf('y'), '--bootstrap-ca', caFile(), '--key-type', 'DSA']);
    expect(k.code).toBe(2);
    expect(k.stderr).toMatch(/--key-type must be one of P-256, P-384, RSA-2048/);
  });
});

describe('power cut at each step', () => {
  // Every durable step of enrollment: the key before the request, the identity after it.
  it.each([
    'pendingEnrollment:temp-written',
    'pendingEnrollment:dir-synced',
    'current:temp-written',
    'current:temp-synced',
    'current:renamed',
    'pendingEnrollment:removed',
  ])('killed at %s during enrollment, the device enrolls again with the same token and connects', async (step) => {
    const id = `cut-${step.replace(/[^a-z]/gi, '-')}`;
    const token = await mintToken(env, id, 'device', 3600);
    const killed = await enrollCli(id, token, step);
    expect(killed.code).toBeNull(); // SIGKILL: no exit code
    if (existsSync(join(stateOf(id), 'identity.json'))) JSON.parse(readFileSync(join(stateOf(id), 'identity.json'), 'utf8'));
    const rerun = await enrollCli(id, token);
    expect(rerun.code, rerun.stderr).toBe(0);
    const { agent } = await runUntilConnected(id);
    expect(await agent.stop()).toBe(0);
  });

  it('killed at any step of a renewal, the device still connects, with the old or the new certificate', async () => {
    const steps = ['candidate:temp-written', 'candidate:temp-synced', 'candidate:renamed', 'candidate:promoted'];
    await Promise.all(
      steps.map(async (step) => {
        const id = `renew-${step.replace(/[^a-z]/gi, '-')}`;
        const token = await mintToken(env, id, 'device', 20);
        expect((await enrollCli(id, token)).code).toBe(0);
        const before = JSON.parse(readFileSync(join(stateOf(id), 'identity.json'), 'utf8')).serial as string;
        const killed = await runCli(['device', 'run', '--state', stateOf(id), '--broker', env.brokerUrl, '--heartbeat', '1s'], { env: { TLSFLEET_FAULT_KILL_AT: step } });
        expect(killed.code).toBeNull();
        expect(killed.stdout).toMatch(/"event":"connected"/);
        const { agent, serial } = await runUntilConnected(id);
        // Temp files of the cut write hold a key and will never be renamed: start-up removes them.
        // Only the killed process's: the running agent may be writing its own renewal now.
        expect(killed.pid).toBeDefined();
        expect(readdirSync(stateOf(id)).filter((f) => f.endsWith('.tmp') && f.includes(`.${killed.pid}.`))).toEqual([]);
        // Cut before the rename: the half-written candidate never existed. After it: the new certificate is used.
        if (step.includes('temp-')) expect(serial).toBe(before);
        else expect(serial).not.toBe(before);
        expect(await agent.stop()).toBe(0);
      }),
    );
  });
});
