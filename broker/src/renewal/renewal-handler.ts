import type { Aedes, PublishPacket } from 'aedes';
import { renewedTopic } from '@tlsfleet/common';
import type { Logger } from 'pino';
import type { BrokerMetrics } from '../server/metrics.js';
import { readRenewRequest } from './request.js';
import { refusalOf, type RenewalRefusal, type Renewer } from './renewer.js';

export interface RenewalSettings {
  /** Undefined: every request is answered `not_found` at once (the device renews over HTTPS). */
  readonly renewer: Renewer | undefined;
  /** Requests handed to the renewer and not answered yet, for the whole broker; past it: `overloaded`. */
  readonly maxInFlight: number;
  /** How long the renewer gets before the device is answered `overloaded`, ms. */
  readonly timeoutMs: number;
}

export const DEFAULT_RENEWAL_SETTINGS = { maxInFlight: 64, timeoutMs: 15_000 } as const;

/** Seconds a device is asked to wait when the broker's relay is full or the renewer too slow. */
const RETRY_AFTER_SECONDS = 10;

interface Deps {
  readonly logger: Logger;
  readonly metrics: BrokerMetrics;
  /** Aedes once it exists: answers go through it, so in a cluster they cross Redis to the instance holding the session. */
  aedes(): Aedes | undefined;
}

/**
 * Handles the PUBLISH on `$tlsfleet/certificates/<id>/renew` of the identity `<id>` (the ACL
 * lets no one else publish there): reads it (request.ts), keeps one request per identity and
 * at most `maxInFlight` for the broker at the renewer, and answers on `.../renewed` at QoS 1,
 * not retained, through Aedes. One log line per request, never the CSR.
 */
export class RenewalHandler {
  readonly #deps: Deps;
  readonly #settings: RenewalSettings;
  /** Identities with a request at the renewer; it stays until the renewer settles, also past the timeout. */
  readonly #inFlight = new Set<string>();

  constructor(deps: Deps, settings: RenewalSettings) {
    this.#deps = deps;
    this.#settings = settings;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** One request from the session of `identity`, authenticated with the certificate `serial`. */
  handle(identity: string, serial: string, payload: Buffer): void {
    const started = performance.now();
    const request = readRenewRequest(payload);
    if (!request.ok) return this.#refuse(identity, serial, request.requestId, request, started);
    const { requestId, csr } = request;
    const renewer = this.#settings.renewer;
    if (renewer === undefined) {
      return this.#refuse(identity, serial, requestId, { code: 'not_found', message: 'This broker relays no renewals: renew over HTTPS (POST /v1/renew).' }, started);
    }
    if (this.#inFlight.has(identity)) {
      return this.#refuse(identity, serial, requestId, { code: 'rate_limited', message: 'A renew request of this identity is already in progress: wait for its answer.' }, started);
    }
    if (this.#inFlight.size >= this.#settings.maxInFlight) {
      return this.#refuse(identity, serial, requestId, { code: 'overloaded', message: 'The broker is relaying as many renewals as it may: retry later.', retryAfterSeconds: RETRY_AFTER_SECONDS }, started);
    }
    this.#inFlight.add(identity);
    let asked: Promise<object>;
    try {
      asked = renewer({ device: identity, serial, csrPem: csr });
    } catch (err) {
      asked = Promise.reject(err);
    }
    const call = asked.finally(() => this.#inFlight.delete(identity));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject({ code: 'overloaded', message: 'The renewal service did not answer in time: retry later.', retryAfterSeconds: RETRY_AFTER_SECONDS }), this.#settings.timeoutMs);
      timer.unref();
    });
    Promise.race([call, timeout]).then(
      (answer) => {
        clearTimeout(timer);
        this.#deps.metrics.inbandRenewalSeconds.observe((performance.now() - started) / 1000);
        this.#finish(identity, serial, requestId, 'issued', { ...answer, requestId }, started, { newSerial: (answer as { serial?: unknown }).serial });
      },
      (err: unknown) => {
        clearTimeout(timer);
        this.#deps.metrics.inbandRenewalSeconds.observe((performance.now() - started) / 1000);
        const refusal = refusalOf(err);
        if (refusal.code === 'internal_error') this.#deps.logger.warn({ client: identity, err: err instanceof Error ? err.message : String(err) }, 'in-band renewal: the renewer failed');
        this.#refuse(identity, serial, requestId, refusal, started);
      },
    );
    // A renewer that settles after the timeout has nobody to answer.
    call.catch(() => {});
  }

  #refuse(identity: string, serial: string, requestId: string | null, refusal: RenewalRefusal, started: number): void {
    const error = { code: refusal.code, message: refusal.message, ...(refusal.retryAfterSeconds === undefined ? {} : { retryAfter: refusal.retryAfterSeconds }) };
    this.#finish(identity, serial, requestId, refusal.code, { requestId, error }, started, {});
  }

  #finish(identity: string, serial: string, requestId: string | null, result: string, body: Record<string, unknown>, started: number, extra: Record<string, unknown>): void {
    const { logger, metrics } = this.#deps;
    metrics.inbandRenewals.inc({ result });
    logger.info({ client: identity, serial, requestId, result, ...extra, ms: Math.round(performance.now() - started) }, 'in-band renewal');
    const aedes = this.#deps.aedes();
    if (aedes === undefined) return;
    const packet = { cmd: 'publish', topic: renewedTopic(identity), payload: Buffer.from(JSON.stringify(body)), qos: 1, retain: false, dup: false } as PublishPacket;
    const notPublished = (err: Error) => logger.warn({ client: identity, requestId, err: err.message }, 'in-band renewal answer not published');
    try {
      aedes.publish(packet, (err) => {
        if (err) notPublished(err);
      });
    } catch (err) {
      // A broker closing under a late answer.
      notPublished(err as Error);
    }
  }
}
