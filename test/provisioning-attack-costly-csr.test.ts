import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derToPem } from '@tlsfleet/common';
import { makeTestCsr } from '../provisioning/src/authority/csr.fixture.js';
import { rsaKeyWithExponent } from '../bench/src/provisioning/rsa-key-with-exponent.js';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request } from './harness/https-client.js';
import { makeCsr, newKey } from './harness/csr.js';

// Issue 19 item 2: a CSR that is costly to verify (RSA-3072 with a ~3000-bit public
// exponent, milliseconds of CPU per verification) must be refused on the cheap checks:
// the token first, then key policy, and only then the signature. That the signature is
// never verified on these paths is shown by provisioning/src/authority/authority-step-order.test.ts;
// here the real service answers the codes that order implies.
describe('provisioning under costly CSRs', () => {
  let env: ProvisioningEnv;
  let costlyCsr: string;
  beforeAll(async () => {
    // 20 requests at once from one address: the per-client limits (rate and open requests,
    // tested in provisioning-attack-slow-body.test.ts) are off, so every answer shows the check order.
    env = await startProvisioningEnv({ serviceArgs: ['--client-rate', '0', '--max-inflight-per-client', '0'] });
    costlyCsr = derToPem(makeTestCsr(rsaKeyWithExponent(3072, 3000)).der, 'CERTIFICATE REQUEST');
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('answers 401 invalid_token to huge-exponent CSRs with made-up tokens, on /v1/enroll and EST, and stays healthy', async () => {
    const madeUp = 'tf_' + 'A'.repeat(32);
    const answers = await Promise.all(Array.from({ length: 20 }, () => postJson(`${env.url}/v1/enroll`, { token: madeUp, csr: costlyCsr }, { ca: env.ca })));
    expect(answers.map((a) => a.json().error.code)).toEqual(Array.from({ length: 20 }, () => 'invalid_token'));
    expect(answers.every((a) => a.status === 401)).toBe(true);
    const est = await request(`${env.url}/.well-known/est/simpleenroll`, {
      ca: env.ca,
      method: 'POST',
      headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${madeUp}` },
      body: costlyCsr,
    });
    expect(est.status, est.text()).toBe(401);
    expect(est.json().error.code).toBe('invalid_token');
    expect((await request(`${env.url}/healthz`, { ca: env.ca })).status).toBe(200);
  });

  it('answers 400 key_rejected to a huge-exponent CSR with a valid token and leaves the token unspent', async () => {
    const token = await env.token('exponent-victim');
    const refused = await postJson(`${env.url}/v1/enroll`, { token, csr: costlyCsr }, { ca: env.ca });
    expect(refused.status, refused.text()).toBe(400);
    expect(refused.json().error.code).toBe('key_rejected');
    expect(refused.json().error.message).toMatch(/exponent/);
    const ok = await postJson(`${env.url}/v1/enroll`, { token, csr: await makeCsr(newKey()) }, { ca: env.ca });
    expect(ok.status, ok.text()).toBe(201);
    expect(ok.json().deviceId).toBe('exponent-victim');
  });
});
