import { describe, expect, it } from 'vitest';
import { DeviceError } from './errors.js';
import { InBandRenewal, InBandUnavailable, type InBandLink } from './inband-renewal.js';

/** A fake link: records what is sent, answers SUBSCRIBE as told. */
class FakeLink implements InBandLink {
  current: { id: number; serial: string } | undefined = { id: 1, serial: 'aa' };
  subscribed: { filter: string; link: number }[] = [];
  published: { topic: string; body: { requestId: string; csr: string } }[] = [];
  refuseSubscribe = false;
  onPublish: (body: { requestId: string; csr: string }) => void = () => {};

  async subscribeOnce(filter: string): Promise<number> {
    if (this.refuseSubscribe) throw new DeviceError('forbidden', `the broker refused the subscription to ${filter}`);
    this.subscribed.push({ filter, link: this.current!.id });
    return this.current!.id;
  }

  async publishNow(topic: string, payload: Buffer): Promise<void> {
    const body = JSON.parse(payload.toString()) as { requestId: string; csr: string };
    this.published.push({ topic, body });
    queueMicrotask(() => this.onPublish(body));
  }
}

const answer = (body: object) => Buffer.from(JSON.stringify(body));
let ids = 0;
const setup = (timeoutMs = 2000) => {
  const link = new FakeLink();
  const inBand = new InBandRenewal(link, 'dev-1', { timeoutMs, requestId: () => `r${++ids}` });
  return { link, inBand };
};

describe('in-band renewal: request and answer', () => {
  it('subscribes to its own answer topic once per link, publishes {requestId, csr}, and resolves with the answer carrying that requestId', async () => {
    const { link, inBand } = setup();
    link.onPublish = ({ requestId }) => {
      inBand.onAnswer(answer({ requestId: 'someone-else', deviceId: 'dev-1', serial: 'bad' })); // not ours: ignored
      inBand.onAnswer(Buffer.from('not json'));
      inBand.onAnswer(answer({ requestId, deviceId: 'dev-1', serial: 'bb' }));
    };
    await expect(inBand.request('CSR1', 'aa')).resolves.toMatchObject({ serial: 'bb' });
    await expect(inBand.request('CSR2', 'aa')).resolves.toMatchObject({ serial: 'bb' });
    expect(link.subscribed).toEqual([{ filter: '$tlsfleet/certificates/dev-1/renewed', link: 1 }]);
    expect(link.published.map((p) => p.topic)).toEqual(['$tlsfleet/certificates/dev-1/renew', '$tlsfleet/certificates/dev-1/renew']);
    expect(link.published.map((p) => p.body.csr)).toEqual(['CSR1', 'CSR2']);
    expect(link.published[0]!.body.requestId).not.toBe(link.published[1]!.body.requestId);
    link.current = { id: 2, serial: 'bb' };
    await inBand.request('CSR3', 'bb');
    expect(link.subscribed.map((s) => s.link)).toEqual([1, 2]);
    expect(inBand.handles('$tlsfleet/certificates/dev-1/renewed')).toBe(true);
    expect(inBand.handles('$tlsfleet/certificates/dev-2/renewed')).toBe(false);
  });

  it.each([
    ['revoked', undefined, undefined],
    ['superseded', undefined, undefined],
    ['key_rejected', undefined, undefined],
    ['rate_limited', 30, 30_000],
    ['overloaded', 5, 5000],
  ])('an answer with error %s is the typed DeviceError /v1/renew gives (retryAfter %s s)', async (code, retryAfter, retryAfterMs) => {
    const { link, inBand } = setup();
    link.onPublish = ({ requestId }) => inBand.onAnswer(answer({ requestId, error: { code, message: `no: ${code}`, ...(retryAfter ? { retryAfter } : {}) } }));
    const err = (await inBand.request('CSR', 'aa').catch((e: unknown) => e)) as DeviceError;
    expect(err).toBeInstanceOf(DeviceError);
    expect(err).toMatchObject({ code, message: `no: ${code}`, retryAfterMs });
  });

  it('an error code it does not know is bad_response, not retried as if transient', async () => {
    const { link, inBand } = setup();
    link.onPublish = ({ requestId }) => inBand.onAnswer(answer({ requestId, error: { code: 'martian', message: '?' } }));
    await expect(inBand.request('CSR', 'aa')).rejects.toMatchObject({ code: 'bad_response', retryable: false });
  });

  it('not_found (no renewer) means HTTPS, at once and for the rest of that link', async () => {
    const { link, inBand } = setup();
    link.onPublish = ({ requestId }) => inBand.onAnswer(answer({ requestId, error: { code: 'not_found', message: 'no renewer' } }));
    const err = await inBand.request('CSR', 'aa').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InBandUnavailable);
    expect(err).toMatchObject({ lasting: true });
    await expect(inBand.request('CSR', 'aa')).rejects.toBeInstanceOf(InBandUnavailable);
    expect(link.published).toHaveLength(1);
    link.current = { id: 2, serial: 'aa' };
    link.onPublish = ({ requestId }) => inBand.onAnswer(answer({ requestId, deviceId: 'dev-1' }));
    await expect(inBand.request('CSR', 'aa')).resolves.toMatchObject({ deviceId: 'dev-1' });
  });

  it('no answer within the timeout means HTTPS; the late answer to that request is ignored', async () => {
    const { link, inBand } = setup(50);
    const err = await inBand.request('CSR', 'aa').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InBandUnavailable);
    expect((err as Error).message).toMatch(/no answer .* within 50 ms/);
    const late = link.published[0]!.body.requestId;
    link.onPublish = ({ requestId }) => {
      inBand.onAnswer(answer({ requestId: late, error: { code: 'revoked', message: 'late' } }));
      inBand.onAnswer(answer({ requestId, deviceId: 'dev-1', serial: 'cc' }));
    };
    await expect(inBand.request('CSR', 'aa')).resolves.toMatchObject({ serial: 'cc' });
  });

  it('not connected, connected with another certificate, or a refused subscription: HTTPS, nothing published', async () => {
    const { link, inBand } = setup();
    link.current = undefined;
    await expect(inBand.request('CSR', 'aa')).rejects.toBeInstanceOf(InBandUnavailable);
    link.current = { id: 3, serial: 'zz' };
    await expect(inBand.request('CSR', 'aa')).rejects.toBeInstanceOf(InBandUnavailable);
    link.current = { id: 4, serial: 'aa' };
    link.refuseSubscribe = true;
    await expect(inBand.request('CSR', 'aa')).rejects.toMatchObject({ name: 'InBandUnavailable', lasting: true });
    expect(link.published).toEqual([]);
  });

  it('an answer with no request waiting, or with requestId null, settles nothing', async () => {
    const { link, inBand } = setup(100);
    inBand.onAnswer(answer({ requestId: 'r-old', deviceId: 'dev-1' }));
    link.onPublish = () => inBand.onAnswer(answer({ requestId: null, error: { code: 'invalid_request', message: 'unreadable' } }));
    await expect(inBand.request('CSR', 'aa')).rejects.toBeInstanceOf(InBandUnavailable);
  });
});
