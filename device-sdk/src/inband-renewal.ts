import { randomUUID } from 'node:crypto';
import { isErrorCode } from '@tlsfleet/common';
import { DeviceError } from './errors.js';

/** What in-band renewal needs of the MQTT connection. */
export interface InBandLink {
  /** The link in use (its id and the serial it presented), if any. */
  readonly current: { id: number; serial: string } | undefined;
  /** SUBSCRIBE at QoS 1 on the link in use; resolves with its id, `forbidden` when refused. */
  subscribeOnce(filter: string): Promise<number>;
  /** PUBLISH at QoS 1 on the link in use; resolves on PUBACK. */
  publishNow(topic: string, payload: Buffer): Promise<void>;
}

/**
 * The broker cannot renew over this session now (no renewer: `not_found`, a refused
 * subscription, no answer in time, not connected with the certificate to renew): the
 * caller renews over HTTPS instead.
 */
export class InBandUnavailable extends Error {
  /** True when asking again on this link is pointless (the broker has no renewer, or refused). */
  readonly lasting: boolean;
  constructor(message: string, lasting: boolean) {
    super(message);
    this.name = 'InBandUnavailable';
    this.lasting = lasting;
  }
}

/** Answers that mean "the broker's renewer cannot serve this": HTTPS may still work. */
const FALL_BACK = new Set(['not_found', 'forbidden', 'unauthorized']);

interface Pending {
  requestId: string;
  resolve(body: Record<string, unknown>): void;
  reject(err: Error): void;
}

/**
 * Renewal over the MQTT session: `{requestId, csr}` at QoS 1 to
 * `$tlsfleet/certificates/<id>/renew`, the answer with the same requestId on
 * `$tlsfleet/certificates/<id>/renewed` (subscribed at QoS 1 once per link, before the
 * first request). One request at a time; answers with another requestId (a late answer to a
 * request already given up) are ignored.
 */
export class InBandRenewal {
  readonly renewTopic: string;
  readonly renewedTopic: string;
  private readonly link: InBandLink;
  private readonly timeoutMs: number;
  private readonly newRequestId: () => string;
  private subscribedOn: number | undefined;
  /** A link on which the broker said in-band renewal is not available. */
  private unavailableOn: number | undefined;
  private pending: Pending | undefined;

  constructor(link: InBandLink, deviceId: string, opts: { timeoutMs?: number; requestId?: () => string } = {}) {
    this.link = link;
    this.renewTopic = `$tlsfleet/certificates/${deviceId}/renew`;
    this.renewedTopic = `$tlsfleet/certificates/${deviceId}/renewed`;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.newRequestId = opts.requestId ?? randomUUID;
  }

  /**
   * Sends the CSR for renewing the certificate `serial` (the one the link in use presented)
   * and resolves with the `/v1/renew` answer. Throws the typed refusal (DeviceError) as
   * /v1/renew would, or InBandUnavailable when HTTPS should be used instead.
   */
  async request(csrPem: string, serial: string): Promise<Record<string, unknown>> {
    const link = this.link.current;
    if (link === undefined) throw new InBandUnavailable('not connected', false);
    if (link.serial !== serial) throw new InBandUnavailable('the session runs on another certificate', false);
    if (this.unavailableOn === link.id) throw new InBandUnavailable('the broker does not renew over this session', true);
    if (this.pending) throw new DeviceError('rate_limited', 'a renewal request is already waiting for its answer');
    if (this.subscribedOn !== link.id) {
      try {
        this.subscribedOn = await this.link.subscribeOnce(this.renewedTopic);
      } catch (err) {
        const refused = err instanceof DeviceError && err.code === 'forbidden';
        if (refused) this.unavailableOn = link.id;
        throw new InBandUnavailable(`cannot subscribe to ${this.renewedTopic}: ${(err as Error).message}`, refused);
      }
    }
    const requestId = this.newRequestId();
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending = { requestId, resolve, reject };
      timer = setTimeout(() => reject(new InBandUnavailable(`no answer on ${this.renewedTopic} within ${this.timeoutMs} ms`, false)), this.timeoutMs);
      timer.unref?.();
    });
    answer.catch(() => {});
    try {
      const sent = this.link.publishNow(this.renewTopic, Buffer.from(JSON.stringify({ requestId, csr: csrPem })));
      // The timeout counts from the request, PUBACK or not.
      return await Promise.race([sent.then(() => answer), answer]);
    } catch (err) {
      if (err instanceof DeviceError && err.code === 'not_found') this.unavailableOn = link.id;
      if (err instanceof DeviceError && FALL_BACK.has(err.code)) throw new InBandUnavailable(`the broker answered ${err.code}: ${err.message}`, err.code === 'not_found');
      if (err instanceof DeviceError && (err.code === 'not_connected' || err.code === 'network')) throw new InBandUnavailable(`the request could not be sent: ${err.message}`, false);
      throw err;
    } finally {
      clearTimeout(timer);
      this.pending = undefined;
    }
  }

  /** True when `topic` is the answer topic (the message is then consumed here). */
  handles(topic: string): boolean {
    return topic === this.renewedTopic;
  }

  /** An answer on the `renewed` topic: settles the waiting request it names, else is ignored. */
  onAnswer(payload: Buffer): void {
    const pending = this.pending;
    if (pending === undefined) return;
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
    const answer = body as Record<string, unknown>;
    if (answer.requestId !== pending.requestId) return;
    this.pending = undefined;
    if (answer.error === undefined) return pending.resolve(answer);
    pending.reject(errorOf(answer.error));
  }
}

/** `{"code","message","retryAfter"?}` as the DeviceError /v1/renew would have given. */
export function errorOf(error: unknown): DeviceError {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown; retryAfter?: unknown };
  const message = typeof e.message === 'string' ? e.message : 'the broker refused the renewal';
  const retryAfterMs = typeof e.retryAfter === 'number' && Number.isFinite(e.retryAfter) && e.retryAfter >= 0 ? Math.min(e.retryAfter, 3600) * 1000 : undefined;
  if (isErrorCode(e.code)) return new DeviceError(e.code, message, { retryAfterMs });
  return new DeviceError('bad_response', `the broker answered the renewal with an unknown error: ${JSON.stringify(error)}`, { retryable: false });
}
