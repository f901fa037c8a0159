import type { SecureContext } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Backoff } from './backoff.js';
import type { DeviceIdentity } from './credential-store.js';
import { DeviceError } from './errors.js';
import type { OutboundQueue, QueuedMessage } from './outbound-queue.js';
import { RetryPacer } from './retry-pacer.js';
import { identityContext } from './tls-context.js';
import { toConnectError } from './transport-error.js';

/** What the connection asks of the device at each step. */
export interface ConnectionHooks {
  /** The identity to present now (a renewed candidate before the proven one); undefined stops the loop. */
  credentials(): DeviceIdentity | undefined;
  /**
   * `attemptMs`: from the start of the attempt that succeeded to its CONNACK. `swap`: the link
   * replaced a live one (make-before-break), so no `disconnected` came before it.
   */
  connected(identity: DeviceIdentity, sessionPresent: boolean, attemptMs: number, swap: boolean): void | Promise<void>;
  /** The session was lost (never for a link a swap replaced). */
  disconnected(reason: string): void;
  /** 'retry' waits out the backoff; 'retry-now' tries again at once (another identity); 'stop' ends the loop. */
  connectFailed(err: DeviceError, identity: DeviceIdentity): Promise<'retry' | 'retry-now' | 'stop'>;
  message(topic: string, payload: Buffer, retained: boolean): void;
  /** Trouble the caller did not ask about directly (a refused re-subscription). */
  report(err: DeviceError): void;
  /** A failed attempt will be retried after `delayMs`; `slow` when paced as a configuration error. */
  retrying?(err: DeviceError, delayMs: number, slow: boolean): void;
}

export interface ConnectionOptions {
  brokerUrl: string;
  clientId: string;
  /** MQTT keepalive, s. Default 30. */
  keepaliveSeconds?: number;
  /** TLS handshake + CONNACK, ms. Default 10000. */
  connectTimeoutMs?: number;
  /** A link that stayed up this long resets the backoff, ms. Default 10000. */
  stableAfterMs?: number;
  /** How long a swapped-out link may stay open after the new one's CONNACK before the SDK cuts it, ms. Default 2000. */
  swapDrainMs?: number;
  /** Ceiling of the retry delay after a configuration error (certificate, host, lasting refusal), ms. Default 300000. */
  configurationMaxDelayMs?: number;
  /** A refused port that lasts this long counts as a configuration error, ms. Default 120000. */
  configurationAfterMs?: number;
  random?: () => number;
  backoff: Backoff;
  queue: OutboundQueue;
  hooks: ConnectionHooks;
}

interface Link {
  id: number;
  client: MqttClient;
  identity: DeviceIdentity;
  /** The socket closed: nothing more is sent on it. */
  closed: boolean;
  /** A newer link of the same session replaced it (swap): its close is expected, not a loss. */
  retired: boolean;
}

/**
 * One mqtt.js client per link, never mqtt.js's own fixed-period reconnect: each retry
 * waits out capped exponential backoff with full jitter, so a fleet that lost its broker
 * comes back spread over the window instead of in one stampede. Persistent session
 * (clean: false) with clientId = device id; subscriptions are renewed on every link.
 *
 * A certificate swap is make-before-break: the new link (same client id, same session)
 * is opened while the old one still carries traffic; at its CONNACK the broker has taken
 * the session over and closed the old link, and the outbound queue resends on the new link
 * whatever the old one left unacknowledged. The old link's close is not a disconnection.
 * A refused new certificate leaves the old link as it was.
 */
export class Connection {
  private readonly opts: Required<Omit<ConnectionOptions, 'hooks' | 'backoff' | 'queue' | 'configurationMaxDelayMs' | 'configurationAfterMs' | 'random'>> &
    Pick<ConnectionOptions, 'hooks' | 'backoff' | 'queue'>;
  private readonly pacer: RetryPacer;
  private readonly subscriptions = new Set<string>();
  private link: Link | undefined;
  private linkSeq = 0;
  private stopped = false;
  private swapRequested = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** Resolves the loop's wait when the session (whichever link carries it) is lost. */
  private lost: ((reason: string) => void) | undefined;
  /** A make-before-break swap under way, and whether another was asked for meanwhile. */
  private swapping: Promise<void> | undefined;
  private swapAgain = false;
  private swapRetry: NodeJS.Timeout | undefined;
  /** The client a swap is opening, so that stop() can end it. */
  private opening: MqttClient | undefined;

  constructor(opts: ConnectionOptions) {
    this.opts = { keepaliveSeconds: 30, connectTimeoutMs: 10_000, stableAfterMs: 10_000, swapDrainMs: 2000, ...opts };
    this.pacer = new RetryPacer({ backoff: opts.backoff, configurationMaxDelayMs: opts.configurationMaxDelayMs, configurationAfterMs: opts.configurationAfterMs, random: opts.random });
  }

  get connected(): boolean {
    return this.link !== undefined;
  }

  /** The link in use: its id (a new one per link) and the certificate serial it presented. */
  get current(): { id: number; serial: string } | undefined {
    const link = this.link;
    return link && !link.closed ? { id: link.id, serial: link.identity.serial } : undefined;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Moves the session to the identity `credentials()` now answers. Connected: make-before-break
   * (the old link carries on until the new one's CONNACK). Offline: the next attempt uses it now.
   */
  swap(): void {
    if (this.stopped) return;
    clearTimeout(this.swapRetry);
    if (this.swapping) {
      this.swapAgain = true;
      return;
    }
    const link = this.link;
    if (link === undefined || link.closed) {
      this.swapRequested = true;
      this.wake?.(); // waiting out a backoff: try the new certificate now
      return;
    }
    this.swapping = this.makeBeforeBreak(link)
      .catch((err: unknown) => this.opts.hooks.report(err instanceof DeviceError ? err : new DeviceError('internal_error', String(err), { cause: err })))
      .finally(() => {
        this.swapping = undefined;
        const again = this.swapAgain;
        this.swapAgain = false;
        // A link in use that closed while the swap was under way (the old one when the new was
        // refused, or the new one itself) is a lost session now: the loop reconnects with the newest identity.
        if (this.link?.closed) return this.loseSession();
        if (again) this.swap();
      });
  }

  /** Hands a queued message to the current link, if there is one to take it. */
  send(message: QueuedMessage): void {
    const link = this.link;
    if (link === undefined || link.closed) return;
    message.link = link.id;
    link.client.publish(message.topic, message.payload, { qos: 1, retain: message.retain }, (err) => {
      // A PUBACK on whichever link settles it; a copy resent on a newer link is then a duplicate QoS 1 allows.
      if (!err) this.opts.queue.ack(message.id);
    });
  }

  /** QoS 0 goes out only on a live link. */
  sendAtMostOnce(topic: string, payload: Buffer, retain: boolean): void {
    const link = this.link;
    if (link === undefined || link.closed) throw new DeviceError('not_connected');
    link.client.publish(topic, payload, { qos: 0, retain });
  }

  /**
   * Subscribes on the link in use only (not on later links): for a filter needed by one
   * exchange on this session. Resolves with the link's id; refused: `forbidden`.
   */
  async subscribeOnce(filter: string): Promise<number> {
    const link = this.link;
    if (link === undefined || link.closed) throw new DeviceError('not_connected');
    await subscribeOn(link.client, [filter]);
    return link.id;
  }

  /** QoS 1 on the link in use, outside the queue: resolves on PUBACK, rejects if there is no link or it breaks first. */
  publishNow(topic: string, payload: Buffer): Promise<void> {
    const link = this.link;
    if (link === undefined || link.closed) return Promise.reject(new DeviceError('not_connected'));
    return new Promise((resolve, reject) => {
      link.client.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(new DeviceError('network', err.message, { cause: err })) : resolve()));
    });
  }

  /** Subscribes now if connected, and again on every future link. Refused filters reject with `forbidden`. */
  async subscribe(filter: string): Promise<void> {
    this.subscriptions.add(filter);
    const link = this.link;
    if (link !== undefined) await subscribeOn(link.client, [filter]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.swapRetry);
    this.wake?.();
    this.opening?.end(true);
    this.link?.client.end(false);
    await this.swapping;
    await this.loop;
  }

  private async run(): Promise<void> {
    const { hooks } = this.opts;
    while (!this.stopped) {
      const identity = hooks.credentials();
      if (identity === undefined) break;
      this.swapRequested = false;
      let client: MqttClient;
      let sessionPresent: boolean;
      const attemptFrom = Date.now();
      try {
        ({ client, sessionPresent } = await this.open(identity));
      } catch (caught) {
        const err = toConnectError(caught, this.opts.brokerUrl);
        const verdict = await hooks.connectFailed(err, identity);
        if (verdict === 'stop') break;
        // Always the backoff after a refusal, even if a renewal asked for a swap meanwhile:
        // a broker that refuses every fresh certificate must not get a tight loop.
        if (verdict === 'retry') {
          const plan = this.pacer.next(err);
          hooks.retrying?.(err, plan.delayMs, plan.slow);
          await this.sleep(plan.delayMs);
        }
        continue;
      }
      this.pacer.connected();
      if (this.stopped) {
        client.end(true);
        break;
      }
      const upSince = Date.now();
      const lost = new Promise<string>((resolve) => (this.lost = resolve));
      await this.adopt(client, identity, sessionPresent, Date.now() - attemptFrom, false);
      const reason = await lost;
      this.lost = undefined;
      hooks.disconnected(reason);
      if (this.stopped) break;
      if (Date.now() - upSince >= this.opts.stableAfterMs) this.pacer.stable();
      if (!this.swapRequested) await this.sleep(this.pacer.nextAfterDrop());
    }
    this.link = undefined;
  }

  /** Makes `client` the link in use; a link it replaces is retired (its close is expected). */
  private async adopt(client: MqttClient, identity: DeviceIdentity, sessionPresent: boolean, attemptMs: number, swap: boolean): Promise<void> {
    const link: Link = { id: ++this.linkSeq, client, identity, closed: false, retired: false };
    // Messages the old link still delivers before the broker closes it are dispatched too.
    client.on('message', (topic, payload, packet) => this.opts.hooks.message(topic, payload, packet.retain));
    client.once('close', () => this.onClose(link));
    const previous = this.link;
    this.link = link;
    if (previous !== undefined) this.retire(previous);
    await this.opts.hooks.connected(identity, sessionPresent, attemptMs, swap);
    void this.resubscribe(link);
    // Everything not yet on this link, including what the old link left unacknowledged.
    for (const m of this.opts.queue.pendingFor(link.id)) this.send(m);
  }

  /** The broker closes a replaced link itself (session takeover); if it does not, the SDK cuts it. */
  private retire(link: Link): void {
    link.retired = true;
    if (link.closed) return;
    const cut = setTimeout(() => link.client.end(true), this.opts.swapDrainMs);
    cut.unref?.();
    link.client.once('close', () => clearTimeout(cut));
  }

  private onClose(link: Link): void {
    link.closed = true;
    link.client.end(true);
    if (link.retired || link !== this.link) return;
    // The broker closes the old link at the takeover, just before the new link's CONNACK: wait for the swap's outcome.
    if (this.swapping) return;
    this.loseSession();
  }

  private loseSession(): void {
    const link = this.link;
    if (link === undefined) return;
    this.link = undefined;
    this.opts.queue.linkLost(link.id);
    this.lost?.(this.stopped ? 'closed' : 'connection lost');
  }

  private async makeBeforeBreak(old: Link): Promise<void> {
    const { hooks } = this.opts;
    const identity = hooks.credentials();
    if (identity === undefined || identity === old.identity) return;
    const from = Date.now();
    let opened: { client: MqttClient; sessionPresent: boolean };
    try {
      opened = await this.open(identity, (client) => (this.opening = client));
    } catch (caught) {
      this.opening = undefined;
      const err = toConnectError(caught, this.opts.brokerUrl);
      // Refused: the old link carries on as if nothing happened (the device drops a refused candidate).
      const verdict = this.stopped ? 'stop' : await hooks.connectFailed(err, identity);
      if (verdict === 'retry' && !this.stopped && !old.closed) {
        const plan = this.pacer.next(err);
        this.swapRetry = setTimeout(() => this.swap(), plan.delayMs);
      }
      return;
    }
    this.opening = undefined;
    if (this.stopped || this.link !== old) {
      opened.client.end(true);
      return;
    }
    this.pacer.connected();
    await this.adopt(opened.client, identity, opened.sessionPresent, Date.now() - from, true);
  }

  private open(identity: DeviceIdentity, track?: (client: MqttClient) => void): Promise<{ client: MqttClient; sessionPresent: boolean }> {
    const options: IClientOptions & { minVersion: 'TLSv1.2'; noDelay: boolean; secureContext: SecureContext } = {
      protocolVersion: 4,
      clientId: this.opts.clientId,
      clean: false,
      keepalive: this.opts.keepaliveSeconds,
      reconnectPeriod: 0,
      connectTimeout: this.opts.connectTimeoutMs,
      resubscribe: false,
      queueQoSZero: false,
      // The identity's own context: trust bundle, chain and key, parsed once per identity.
      secureContext: identityContext(identity),
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      // Small MQTT packets must not wait for the peer's delayed ACK (Nagle).
      noDelay: true,
    };
    return new Promise((resolve, reject) => {
      const client = mqtt.connect(this.opts.brokerUrl, options);
      track?.(client);
      const fail = (err: unknown) => {
        client.removeAllListeners('connect');
        client.end(true);
        reject(err);
      };
      client.once('connect', (connack) => {
        client.removeListener('error', fail);
        client.removeListener('close', closedEarly);
        // Errors after CONNACK end in 'close', which the loop handles.
        client.on('error', () => {});
        resolve({ client, sessionPresent: connack.sessionPresent });
      });
      client.once('error', fail);
      const closedEarly = () => fail(new DeviceError('network', 'the broker closed the connection before CONNACK'));
      client.once('close', closedEarly);
    });
  }

  private async resubscribe(link: Link): Promise<void> {
    if (this.subscriptions.size === 0) return;
    try {
      await subscribeOn(link.client, [...this.subscriptions]);
    } catch (err) {
      this.opts.hooks.report(err as DeviceError);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}

function subscribeOn(client: MqttClient, filters: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    client.subscribe(filters, { qos: 1 }, (err, granted) => {
      if (err) return reject(new DeviceError('network', err.message, { cause: err }));
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) return reject(new DeviceError('forbidden', `the broker refused the subscription to ${refused.join(', ')}`));
      resolve();
    });
  });
}
