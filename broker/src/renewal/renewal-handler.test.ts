import type { Aedes, PublishPacket } from 'aedes';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TlsfleetError } from '@tlsfleet/common';
import { BrokerMetrics } from '../server/metrics.js';
import { RenewalHandler, type RenewalSettings } from './renewal-handler.js';
import { MAX_RENEW_REQUEST_BYTES } from './request.js';
import type { Renewer } from './renewer.js';

const CSR = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n';

interface Answer {
  topic: string;
  qos: number;
  retain: boolean;
  body: { requestId: string | null; error?: { code: string; message: string; retryAfter?: number }; [k: string]: unknown };
}

function setup(settings: Partial<RenewalSettings> = {}) {
  const answers: Answer[] = [];
  const waiters: (() => void)[] = [];
  const aedes = {
    publish(packet: PublishPacket, done: (err?: Error) => void) {
      answers.push({ topic: packet.topic, qos: packet.qos, retain: packet.retain, body: JSON.parse(String(packet.payload)) });
      for (const w of waiters.splice(0)) w();
      done();
    },
  } as unknown as Aedes;
  const metrics = new BrokerMetrics();
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const handler = new RenewalHandler({ logger, metrics, aedes: () => aedes }, { renewer: undefined, maxInFlight: 2, timeoutMs: 5_000, ...settings });
  const answered = async (n: number) => {
    for (let i = 0; i < 100 && answers.length < n; i++) await new Promise<void>((resolve) => waiters.push(resolve));
    return answers[n - 1] as Answer;
  };
  const count = async (result: string) => (await metrics.registry.getSingleMetric('tlsfleet_broker_inband_renewals_total')!.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  return { handler, answers, answered, count, lines };
}

const request = (body: unknown) => Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));

/** A renewer that answers only when told to. */
function heldRenewer() {
  const pending: { req: Parameters<Renewer>[0]; resolve: (v: object) => void; reject: (e: unknown) => void }[] = [];
  const renewer: Renewer = (req) => new Promise((resolve, reject) => pending.push({ req, resolve, reject }));
  return { renewer, pending };
}

describe('the in-band renewal handler', () => {
  it.each([
    ['not JSON', request('{"requestId":'), null, 'invalid_request'],
    ['not an object', request('[1]'), null, 'invalid_request'],
    ['no requestId', request({ csr: CSR }), null, 'invalid_request'],
    ['a requestId with a slash', request({ requestId: 'a/b', csr: CSR }), null, 'invalid_request'],
    ['a requestId of 65 characters', request({ requestId: 'a'.repeat(65), csr: CSR }), null, 'invalid_request'],
    ['a csr that is not a string', request({ requestId: 'r1', csr: 7 }), 'r1', 'invalid_request'],
    ['a csr that is not PEM', request({ requestId: 'r1', csr: 'hello' }), 'r1', 'invalid_csr'],
    ['more than 16 KiB', request({ requestId: 'r1', csr: CSR + ' '.repeat(MAX_RENEW_REQUEST_BYTES) }), null, 'payload_too_large'],
  ])('refuses %s before asking the renewer', async (_what, payload, requestId, code) => {
    const held = heldRenewer();
    const { handler, answered, count } = setup({ renewer: held.renewer });
    handler.handle('d1', 'ab12', payload);
    const answer = await answered(1);
    expect(answer).toMatchObject({ topic: '$tlsfleet/certificates/d1/renewed', qos: 1, retain: false });
    expect(answer.body.requestId).toBe(requestId);
    expect(answer.body.error?.code).toBe(code);
    expect(held.pending).toHaveLength(0);
    expect(await count(code)).toBe(1);
  });

  it('answers not_found at once without a renewer', async () => {
    const { handler, answered } = setup();
    handler.handle('d1', 'ab12', request({ requestId: 'r1', csr: CSR }));
    expect((await answered(1)).body).toMatchObject({ requestId: 'r1', error: { code: 'not_found' } });
  });

  it('hands the session\'s identity and serial to the renewer and publishes its answer with the requestId', async () => {
    const held = heldRenewer();
    const { handler, answered, count, lines } = setup({ renewer: held.renewer });
    handler.handle('d1', 'ab12', request({ requestId: 'r-1.x_y', csr: CSR, extra: true }));
    expect(held.pending.map((p) => p.req)).toEqual([{ device: 'd1', serial: 'ab12', csrPem: CSR }]);
    held.pending[0]!.resolve({ deviceId: 'd1', certificate: 'C', serial: 'cd34' });
    expect((await answered(1)).body).toEqual({ deviceId: 'd1', certificate: 'C', serial: 'cd34', requestId: 'r-1.x_y' });
    expect(await count('issued')).toBe(1);
    expect(handler.inFlight).toBe(0);
    const line = lines.find((l) => l.includes('in-band renewal')) ?? '';
    expect(JSON.parse(line)).toMatchObject({ client: 'd1', serial: 'ab12', requestId: 'r-1.x_y', result: 'issued', newSerial: 'cd34' });
    expect(line).not.toContain('CERTIFICATE REQUEST');
  });

  it('keeps one request per identity and a cap for the broker', async () => {
    const held = heldRenewer();
    const { handler, answered } = setup({ renewer: held.renewer, maxInFlight: 2 });
    handler.handle('d1', 's1', request({ requestId: 'a', csr: CSR }));
    handler.handle('d1', 's1', request({ requestId: 'b', csr: CSR }));
    expect((await answered(1)).body).toMatchObject({ requestId: 'b', error: { code: 'rate_limited' } });
    handler.handle('d2', 's2', request({ requestId: 'c', csr: CSR }));
    handler.handle('d3', 's3', request({ requestId: 'd', csr: CSR }));
    const overloaded = await answered(2);
    expect(overloaded).toMatchObject({ topic: '$tlsfleet/certificates/d3/renewed', body: { requestId: 'd', error: { code: 'overloaded' } } });
    expect(overloaded.body.error?.retryAfter).toBeGreaterThan(0);
    expect(held.pending).toHaveLength(2);
    held.pending[0]!.reject(new TlsfleetError('revoked'));
    expect((await answered(3)).body).toMatchObject({ requestId: 'a', error: { code: 'revoked' } });
    handler.handle('d1', 's1', request({ requestId: 'e', csr: CSR }));
    expect(held.pending).toHaveLength(3);
  });

  it('passes the renewer\'s retryAfterSeconds on, and hides an error without a stable code', async () => {
    const held = heldRenewer();
    const { handler, answered } = setup({ renewer: held.renewer });
    handler.handle('d1', 's1', request({ requestId: 'a', csr: CSR }));
    handler.handle('d2', 's2', request({ requestId: 'b', csr: CSR }));
    held.pending[0]!.reject(new TlsfleetError('overloaded', 'busy', { retryAfterSeconds: 7.2 }));
    expect((await answered(1)).body.error).toEqual({ code: 'overloaded', message: 'busy', retryAfter: 8 });
    held.pending[1]!.reject(new Error('ECONNRESET at 10.0.0.7'));
    const hidden = (await answered(2)).body.error;
    expect(hidden?.code).toBe('internal_error');
    expect(hidden?.message).not.toContain('10.0.0.7');
  });

  it('answers a renewer that does not answer in time, and keeps the identity in flight until it settles', async () => {
    const held = heldRenewer();
    const { handler, answered } = setup({ renewer: held.renewer, timeoutMs: 50 });
    handler.handle('d1', 's1', request({ requestId: 'a', csr: CSR }));
    expect((await answered(1)).body).toMatchObject({ requestId: 'a', error: { code: 'overloaded' } });
    handler.handle('d1', 's1', request({ requestId: 'b', csr: CSR }));
    expect((await answered(2)).body).toMatchObject({ requestId: 'b', error: { code: 'rate_limited' } });
    held.pending[0]!.resolve({ serial: 'late' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(handler.inFlight).toBe(0);
  });
});
