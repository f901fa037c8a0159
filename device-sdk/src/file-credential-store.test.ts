import { chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceError } from './errors.js';
import { FileCredentialStore, STATE_FILES } from './file-credential-store.js';
import { tempStateDir, testIdentity } from './test-identity.fixture.js';

const dirs: { cleanup: () => void }[] = [];
function stateDir(): string {
  const d = tempStateDir();
  dirs.push(d);
  return d.path;
}
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

describe('the file credential store', () => {
  it('creates a 0700 directory and writes every file 0600', async () => {
    const dir = stateDir();
    const store = new FileCredentialStore(dir);
    const id = await testIdentity();
    await store.savePendingEnrollment({ privateKeyPem: id.privateKeyPem, provisioningUrl: 'https://p', createdAt: new Date().toISOString() });
    await store.saveEnrolled(id);
    await store.saveCandidate(await testIdentity());
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual([STATE_FILES.current, STATE_FILES.candidate].sort());
  });

  it('round-trips the identity and forgets the pending enrollment once enrolled', async () => {
    const store = new FileCredentialStore(stateDir());
    const id = await testIdentity('sensor-7');
    await store.savePendingEnrollment({ privateKeyPem: id.privateKeyPem, provisioningUrl: 'https://p', createdAt: 'now' });
    expect((await store.load()).pendingEnrollment?.privateKeyPem).toBe(id.privateKeyPem);
    await store.saveEnrolled(id);
    expect(await store.load()).toEqual({ current: id });
  });

  it('keeps the key of a renewal in flight until its answer is stored as the candidate, and drops a broken one', async () => {
    const dir = stateDir();
    const store = new FileCredentialStore(dir);
    const id = await testIdentity();
    await store.saveEnrolled(id);
    const pending = { privateKeyPem: (await testIdentity()).privateKeyPem, serial: id.serial, createdAt: 'now' };
    await store.savePendingRenewal(pending);
    expect(statSync(join(dir, STATE_FILES.pendingRenewal)).mode & 0o777).toBe(0o600);
    expect((await new FileCredentialStore(dir).load()).pendingRenewal).toEqual(pending);
    await store.saveCandidate(await testIdentity());
    expect((await store.load()).pendingRenewal).toBeUndefined();
    writeFileSync(join(dir, STATE_FILES.pendingRenewal), '{"format":1}', { mode: 0o600 });
    const state = await store.load();
    expect(state.pendingRenewal).toBeUndefined();
    expect(state.current).toEqual(id);
    expect(existsSync(join(dir, STATE_FILES.pendingRenewal))).toBe(false);
  });

  it('re-enrollment replaces a dead identity and drops its candidate and pending renewal; cut before the rename, the old identity is whole', async () => {
    const dir = stateDir();
    const old = await testIdentity('sensor-8');
    const setUp = async (store: FileCredentialStore) => {
      await store.saveEnrolled(old);
      await store.saveCandidate(await testIdentity('sensor-8'));
      await store.savePendingRenewal({ privateKeyPem: old.privateKeyPem, serial: old.serial, createdAt: 'now' });
    };
    const fresh = await testIdentity('sensor-8');
    // A power cut just before identity.json is renamed: what a restart finds.
    const cut = new FileCredentialStore(dir, { onStep: (step) => { if (step === 'current:temp-synced') throw new Error('power cut'); } });
    await setUp(new FileCredentialStore(dir));
    await expect(cut.replaceIdentity(fresh)).rejects.toThrow('power cut');
    expect((await new FileCredentialStore(dir).load()).current).toEqual(old);

    const store = new FileCredentialStore(dir);
    await setUp(store);
    await store.replaceIdentity(fresh);
    expect(await store.load()).toEqual({ current: fresh });
  });

  it('promotes a candidate with one rename and keeps the working identity until then', async () => {
    const store = new FileCredentialStore(stateDir());
    const a = await testIdentity();
    const b = await testIdentity();
    await store.saveEnrolled(a);
    await store.saveCandidate(b);
    expect(await store.load()).toEqual({ current: a, candidate: b });
    await store.promoteCandidate();
    expect(await store.load()).toEqual({ current: b });
  });

  it('drops a broken candidate and keeps the working identity', async () => {
    const dir = stateDir();
    const store = new FileCredentialStore(dir);
    const a = await testIdentity();
    await store.saveEnrolled(a);
    writeFileSync(join(dir, STATE_FILES.candidate), '{"format":1,"deviceId":"x"', { mode: 0o600 });
    expect(await store.load()).toEqual({ current: a });
    expect(existsSync(join(dir, STATE_FILES.candidate))).toBe(false);
  });

  it('refuses a current identity whose key does not match its certificate', async () => {
    const dir = stateDir();
    const store = new FileCredentialStore(dir);
    const a = await testIdentity();
    const b = await testIdentity();
    await store.saveEnrolled({ ...a, privateKeyPem: b.privateKeyPem });
    await expect(store.load()).rejects.toMatchObject({ code: 'state_corrupt', message: expect.stringMatching(/does not match/) });
  });

  it('refuses a key file others can read, and says how to fix it', async () => {
    const dir = stateDir();
    const store = new FileCredentialStore(dir);
    await store.saveEnrolled(await testIdentity());
    chmodSync(join(dir, STATE_FILES.current), 0o644);
    const err = await store.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).message).toMatch(/chmod 600/);
  });

  it('refuses a state directory others can write', () => {
    const dir = stateDir();
    new FileCredentialStore(dir);
    chmodSync(dir, 0o777);
    expect(() => new FileCredentialStore(dir)).toThrow(/chmod 700/);
  });

  it('reports each durable step of a write in order, so power cuts can be placed between them', async () => {
    const steps: string[] = [];
    const store = new FileCredentialStore(stateDir(), { onStep: (s) => steps.push(s) });
    await store.saveEnrolled(await testIdentity());
    expect(steps).toEqual(['current:temp-written', 'current:temp-synced', 'current:renamed', 'current:dir-synced']);
  });

  it('never leaves the target half-written: a crash before the rename leaves the old content', async () => {
    const dir = stateDir();
    const a = await testIdentity();
    await new FileCredentialStore(dir).saveEnrolled(a);
    const crashing = new FileCredentialStore(dir, {
      onStep: (s) => {
        if (s === 'current:temp-synced') throw new Error('power cut');
      },
    });
    await expect(crashing.saveEnrolled(await testIdentity())).rejects.toThrow('power cut');
    expect(JSON.parse(readFileSync(join(dir, STATE_FILES.current), 'utf8')).certificatePem).toBe(a.certificatePem);
    expect((await new FileCredentialStore(dir).load()).current).toEqual(a);
  });
});
