import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { startPartialUpload } from './harness/partial-upload.js';

// Issue 19 item 1, the cheap refusals: a renewal without a client certificate, or one request
// too many from one address, is refused before its body is read. The refusal must also end
// the connection: on a kept-alive connection Node would otherwise go on draining the unread
// body, whatever its Content-Length claims, until the 30 s request timeout.
describe('provisioning refusals before the body', () => {
  let env: ProvisioningEnv;
  beforeAll(async () => {
    env = await startProvisioningEnv({ serviceArgs: ['--max-inflight-per-client', '1'] });
  });
  afterAll(async () => {
    await env?.stop();
  });
  const claimed = Buffer.alloc(1024 * 1024, 0x20); // 1 MiB claimed; 10 bytes sent

  it('answers a renewal without a client certificate 401 at once and closes the kept-alive connection', async () => {
    const upload = await startPartialUpload(env.url, { ca: env.ca, path: '/v1/renew', body: claimed, sentBytes: 10, keepAlive: true });
    try {
      const [answer, ...more] = await upload.closed();
      expect(answer?.status, answer?.body).toBe(401);
      expect(JSON.parse(answer!.body).error.code).toBe('unauthorized');
      expect(answer?.headers.connection).toBe('close');
      expect(more).toEqual([]);
    } finally {
      upload.destroy();
    }
  });

  it('answers a second open enrollment from one address 429 at once and closes its connection, while the first still uploads', async () => {
    const first = await startPartialUpload(env.url, { ca: env.ca, path: '/v1/enroll', body: Buffer.from('{"token":"x"}'.padEnd(100)), sentBytes: 5 });
    const second = await startPartialUpload(env.url, { ca: env.ca, path: '/v1/enroll', body: claimed, sentBytes: 10, keepAlive: true });
    try {
      const [answer] = await second.closed();
      expect(answer?.status, answer?.body).toBe(429);
      expect(JSON.parse(answer!.body).error.code).toBe('rate_limited');
      expect(answer?.headers.connection).toBe('close');
      expect(first.socket.destroyed).toBe(false);
    } finally {
      first.destroy();
      second.destroy();
    }
  });
});
