import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from './harness/cli.js';
import { makeCsr, newKey } from './harness/csr.js';
import { postJson, type HttpAnswer } from './harness/https-client.js';
import { startPostgresFleet, type PostgresFleet } from './harness/postgres-fleet.js';

// Issue 19 items 4, 7 and 12 where they race: two provisioning instances on one PostgreSQL
// database, each request of a pair sent to a different instance at the same moment.
describe('lifecycle races across two instances on PostgreSQL', () => {
  let fleet: PostgresFleet;
  let a: Service;
  let b: Service;
  let ca: string;
  let adminToken: string;
  beforeAll(async () => {
    fleet = await startPostgresFleet({ database: 'lifecycle' });
    ({ a, b, ca, adminToken } = fleet);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  const admin = () => ({ authorization: `Bearer ${adminToken}` });
  const codeOf = (res: HttpAnswer) => (res.status >= 400 ? `${res.status} ${res.json().error.code}` : String(res.status));
  async function mint(s: Service, subject: string, kind: 'device' | 'service' = 'device'): Promise<string> {
    const res = await postJson(`${s.url}/v1/tokens`, { deviceId: subject, kind, certTtlSeconds: 3600 }, { ca, headers: admin() });
    expect(res.status, res.text()).toBe(201);
    return res.json().token;
  }
  const enroll = async (s: Service, token: string) => postJson(`${s.url}/v1/enroll`, { token, csr: await makeCsr(newKey()) }, { ca });

  it('lets one of two concurrent renewals of one certificate with different keys through, on different instances', async () => {
    for (let round = 0; round < 3; round++) {
      const key = newKey();
      const enrolled = await postJson(`${a.url}/v1/enroll`, { token: await mint(a, `pg-lineage-${round}`), csr: await makeCsr(key) }, { ca });
      expect(enrolled.status).toBe(201);
      const creds = { ca, cert: enrolled.json().chain, key: key.privatePem };
      const [csr1, csr2] = await Promise.all([makeCsr(newKey()), makeCsr(newKey())]);
      const answers = await Promise.all([postJson(`${a.url}/v1/renew`, { csr: csr1 }, creds), postJson(`${b.url}/v1/renew`, { csr: csr2 }, creds)]);
      expect(answers.map(codeOf).sort()).toEqual(['201', '403 superseded']);
    }
  });

  it('answers two concurrent renewals of one certificate with one new key, on different instances, with the same certificate', async () => {
    const key = newKey();
    const enrolled = await postJson(`${a.url}/v1/enroll`, { token: await mint(a, 'pg-lineage-same'), csr: await makeCsr(key) }, { ca });
    const creds = { ca, cert: enrolled.json().chain, key: key.privatePem };
    const next = newKey();
    const [csr1, csr2] = await Promise.all([makeCsr(next), makeCsr(next)]);
    const answers = await Promise.all([postJson(`${a.url}/v1/renew`, { csr: csr1 }, creds), postJson(`${b.url}/v1/renew`, { csr: csr2 }, creds)]);
    expect(answers.map((r) => r.status)).toEqual([201, 201]);
    expect(answers[0]!.json().serial).toBe(answers[1]!.json().serial);
  });

  it('lets exactly one kind win when one name enrolls as a device and as a service at once', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `pg-clash-${i}`);
    const tokens = await Promise.all(names.map(async (n) => ({ device: await mint(a, n, 'device'), service: await mint(b, n, 'service') })));
    const answers = await Promise.all(tokens.map(async (t) => Promise.all([enroll(a, t.device), enroll(b, t.service)])));
    for (const pair of answers) {
      expect(pair.map(codeOf).sort()).toEqual(['201', '400 invalid_request']);
      const refused = pair.find((r) => r.status === 400)!;
      expect(refused.json().error.message).toMatch(/already enrolled as a (device|service)/);
    }
  });

  it('cancels the tokens of a device revoked on one instance for enrollment on the other', async () => {
    expect((await enroll(a, await mint(a, 'pg-revoked'))).status).toBe(201);
    const before = await mint(a, 'pg-revoked');
    const revoked = await postJson(`${a.url}/v1/devices/pg-revoked/revoke`, {}, { ca, headers: admin() });
    expect(revoked.status).toBe(200);
    expect(codeOf(await enroll(b, before))).toBe('401 invalid_token');
    expect((await enroll(b, await mint(b, 'pg-revoked'))).status).toBe(201);
  });
});
