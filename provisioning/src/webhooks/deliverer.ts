import { createHmac, randomBytes } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { ProvisioningMetrics } from '../metrics.js';
import { hookTarget, postJson, type HookTarget } from '../hooks/post-json.js';
import type { ClaimedDelivery, OutboxEvent, WebhookOutbox } from './outbox.js';

export interface WebhookOptions {
  /** `--webhook`, repeatable: https URLs, or http to a loopback address. */
  urls: readonly string[];
  /** `--webhook-secret-file` contents: signs every body (X-Tlsfleet-Signature); none: no header. */
  secret?: string;
  /** `--hook-ca`: trust anchors for https receivers instead of the system CAs. */
  ca?: string;
  /** Between rounds when there was nothing to do, ms; default 1 s. */
  pollMs?: number;
  /** First retry delay and its cap, ms; default 1 s and 5 minutes. Each failure doubles it; jitter takes up to half off. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Time a receiver has to answer, ms; default 10 s. */
  timeoutMs?: number;
  /** Deliveries sent at once by one instance; default 16. */
  batch?: number;
  /** `--retention`: delivered deliveries and their events older than this go, ms; 0 keeps them. Default 90 days. */
  retentionMs?: number;
}

/** Retention runs at most this often, ms. */
const PRUNE_EVERY_MS = 600_000;

/** The header carrying `sha256=<hex HMAC-SHA256 of the raw body>`. */
export const SIGNATURE_HEADER = 'x-tlsfleet-signature';

/** The JSON body of an event, exactly as sent and signed. */
export function eventBody(e: OutboxEvent): string {
  return JSON.stringify({
    id: e.id,
    type: e.type,
    device: e.device,
    serial: e.serial,
    ...(e.notAfter === undefined ? {} : { notAfter: new Date(e.notAfter).toISOString() }),
    at: new Date(e.at).toISOString(),
  });
}

export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Delivers the outbox to the configured receivers: each round hands new events out (one
 * delivery per receiver), leases due deliveries (the oldest undelivered per receiver and
 * device, so order per device holds), POSTs them and records the outcome. A failure is
 * retried after a capped exponential backoff with jitter; a lease left by a stopped instance
 * expires and another instance (or this one, restarted) takes the delivery over: at least once.
 */
export class WebhookDeliverer {
  private readonly targets = new Map<string, HookTarget>();
  private readonly owner = randomBytes(8).toString('hex');
  private readonly pollMs: number;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly timeoutMs: number;
  private readonly batch: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private prunedAt = 0;

  constructor(
    private readonly outbox: WebhookOutbox,
    private readonly opts: WebhookOptions,
    private readonly logger: Logger,
    private readonly metrics: ProvisioningMetrics,
  ) {
    for (const url of opts.urls) this.targets.set(url, hookTarget(url, '--webhook', opts.ca));
    this.pollMs = opts.pollMs ?? 1_000;
    this.baseMs = opts.backoffBaseMs ?? 1_000;
    this.capMs = opts.backoffCapMs ?? 300_000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.batch = opts.batch ?? 16;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops after the round in progress; leases it holds expire for others to take over. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // Cuts the posts in flight; deliver() then hands them back, due at once, for whoever runs next.
    for (const t of this.targets.values()) t.agent.destroy();
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round()
        .then((busy) => this.schedule(busy ? 0 : this.pollMs))
        .catch((err: unknown) => {
          this.logger.warn({ err }, 'webhook round failed; retrying');
          this.schedule(this.pollMs);
        });
    }, ms);
  }

  /** One round; true when there may be more to do at once. */
  async round(): Promise<boolean> {
    const now = Date.now();
    const fanned = await this.outbox.fanOut([...this.targets.keys()], now, 500);
    const leaseUntil = now + this.timeoutMs * 3;
    const claimed = this.targets.size === 0 ? [] : await this.outbox.claim(this.owner, now, leaseUntil, this.batch);
    await Promise.all(claimed.map((d) => this.deliver(d)));
    const retentionMs = this.opts.retentionMs ?? 90 * 86_400_000;
    if (retentionMs > 0 && now - this.prunedAt >= PRUNE_EVERY_MS) {
      this.prunedAt = now;
      const pruned = await this.outbox.prune(now - retentionMs, 1_000);
      if (pruned > 0) this.logger.info({ rows: pruned, retentionMs }, 'webhook outbox pruned');
    }
    const backlog = await this.outbox.backlog();
    this.metrics.webhookBacklog.set(backlog.pending);
    this.metrics.webhookFailing.set(backlog.failing);
    return fanned === 500 || claimed.length === this.batch;
  }

  private async deliver(d: ClaimedDelivery): Promise<void> {
    const target = this.targets.get(d.endpoint);
    const body = eventBody(d.event);
    if (!target) {
      // A receiver another instance is configured with: leave it for an hour (all instances should share one --webhook list).
      await this.outbox.failed(d.event.seq, d.endpoint, this.owner, Date.now(), Date.now() + 3_600_000, undefined, 'receiver not configured on this instance');
      return;
    }
    const headers: Record<string, string> = { 'x-tlsfleet-event': d.event.type, 'x-tlsfleet-event-id': d.event.id };
    if (this.opts.secret !== undefined) headers[SIGNATURE_HEADER] = signature(this.opts.secret, body);
    const outcome = await postJson(target, body, this.timeoutMs, headers);
    const now = Date.now();
    const where = endpointLabel(d.endpoint);
    if (outcome.ok && outcome.status >= 200 && outcome.status <= 299) {
      await this.outbox.delivered(d.event.seq, d.endpoint, this.owner, now);
      this.metrics.webhookDeliveries.inc({ result: 'delivered' });
      this.logger.debug({ endpoint: where, event: d.event.id, type: d.event.type, device: d.event.device, attempts: d.attempts }, 'webhook delivered');
      return;
    }
    if (this.stopped && !outcome.ok) {
      await this.outbox.failed(d.event.seq, d.endpoint, this.owner, now, now, undefined, 'interrupted by shutdown');
      return;
    }
    const result = outcome.ok ? 'status' : outcome.failure;
    const error = outcome.ok ? `HTTP ${outcome.status}` : outcome.detail;
    const nextAt = now + this.backoff(d.attempts);
    await this.outbox.failed(d.event.seq, d.endpoint, this.owner, now, nextAt, outcome.ok ? outcome.status : undefined, error);
    this.metrics.webhookDeliveries.inc({ result });
    this.logger.warn({ endpoint: where, event: d.event.id, type: d.event.type, device: d.event.device, attempts: d.attempts, result, reason: error, retryAt: new Date(nextAt).toISOString() }, 'webhook delivery failed; will retry');
  }

  private backoff(attempts: number): number {
    return retryDelay(attempts, this.baseMs, this.capMs);
  }
}

/**
 * The wait after the `attempts`-th failure: `baseMs` doubled for each earlier failure, at
 * most `capMs`, with equal jitter (half the step fixed, half random), so deliveries that
 * failed together do not all come back together.
 */
export function retryDelay(attempts: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const step = Math.min(capMs, baseMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  return Math.round(step / 2 + random() * (step / 2));
}

/** A receiver as logs and the admin API show it: scheme, host and path, no query. */
export function endpointLabel(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
