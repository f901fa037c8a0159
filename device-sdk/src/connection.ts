import type { SecureContext } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Backoff } from './backoff.js';
import type { DeviceIdentity } from './credential-store.js';
import { DeviceError } from './errors.js';
import type { OutboundQueue, QueuedMessage } from './outbound-queue.js';
import { RetryPacer } from './retry-pacer.js';
import { identityContext } from './tls-context.js';
import { transportError } from './transport-error.js';

/** What the connection asks of the device at each step. */
export interface ConnectionHooks {
  /** The identity to present now (a renewed candidate before the proven one); undefined stops the loop. */
  credentials(): DeviceIdentity | undefined;
  /** `attemptMs`: from the start of the attempt that succeeded to its CONNACK. */
  connected(identity: DeviceIdentity, sessionPresent: boolean, attemptMs: number): void | Promise<void>;
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
  /** How long a certificate swap waits for in-flight PUBACKs before it cuts the old link, ms. Default 2000. */
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
  /** Set while a swap drains it: new messages wait for the next link. */
  draining: boolean;
  /** Called when a draining link has no unacknowledged message left. */
  drained?: () => void;
}

/**
 * One mqtt.js client per link, never mqtt.js's own fixed-period reconnect: each retry
 * waits out capped exponential backoff with full jitter, so a fleet that lost its broker
 * comes back spread over the window instead of in one stampede. Persistent session
 * (clean: false) with clientId = device id; subscriptions are renewed on every link.
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

  constructor(opts: ConnectionOptions) {
    this.opts = { keepaliveSeconds: 30, connectTimeoutMs: 10_000, stableAfterMs: 10_000, swapDrainMs: 2000, ...opts };
    this.pacer = new RetryPacer({ backoff: opts.backoff, configurationMaxDelayMs: opts.configurationMaxDelayMs, configurationAfterMs: opts.configurationAfterMs, random: opts.random });
  }

  get connected(): boolean {
    return this.link !== undefined;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Moves the session to the identity `credentials()` now answers: drain, disconnect, reconnect at once. */
  swap(): void {
    this.swapRequested = true;
    const link = this.link;
    if (link === undefined) {
      this.wake?.(); // waiting out a backoff: try the new certificate now
      return;
    }
    link.draining = true;
    const cut = setTimeout(() => link.client.end(true), this.opts.swapDrainMs);
    void this.whenDrained(link).then(() => {
      clearTimeout(cut);
      link.client.end(false); // DISCONNECT: the broker keeps the session [MQTT-3.1.2-4]
    });
  }

  /** Hands a queued message to the current link, if there is one to take it. */
  send(message: QueuedMessage): void {
    const link = this.link;
    if (link === undefined || link.draining) return;
    message.link = link.id;
    link.client.publish(message.topic, message.payload, { qos: 1, retain: message.retain }, (err) => {
      if (err) return;
      this.opts.queue.ack(message.id);
      if (link.draining && this.opts.queue.inFlightOn(link.id) === 0) link.drained?.();
    });
  }

  /** QoS 0 goes out only on a live link. */
  sendAtMostOnce(topic: string, payload: Buffer, retain: boolean): void {
    const link = this.link;
    if (link === undefined || link.draining) throw new DeviceError('not_connected');
    link.client.publish(topic, payload, { qos: 0, retain });
  }

  /** Subscribes now if connected, and again on every future link. Refused filters reject with `forbidden`. */
  async subscribe(filter: string): Promise<void> {
    this.subscriptions.add(filter);
    const link = this.link;
    if (link !== undefined) await subscribeOn(link.client, [filter]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.link?.client.end(false);
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
      const link: Link = { id: ++this.linkSeq, client, draining: false };
      const upSince = Date.now();
      const closed = new Promise<string>((resolve) => {
        client.once('close', () => resolve(this.swapRequested ? 'certificate swap' : this.stopped ? 'closed' : 'connection lost'));
      });
      client.on('message', (topic, payload, packet) => hooks.message(topic, payload, packet.retain));
      this.link = link;
      await hooks.connected(identity, sessionPresent, Date.now() - attemptFrom);
      void this.resubscribe(link);
      for (const m of this.opts.queue.pendingFor(link.id)) this.send(m);
      const reason = await closed;
      this.link = undefined;
      client.end(true);
      this.opts.queue.linkLost(link.id);
      hooks.disconnected(reason);
      if (this.stopped) break;
      if (Date.now() - upSince >= this.opts.stableAfterMs) this.pacer.stable();
      if (!this.swapRequested) await this.sleep(this.pacer.nextAfterDrop());
    }
    this.link = undefined;
  }

  private open(identity: DeviceIdentity): Promise<{ client: MqttClient; sessionPresent: boolean }> {
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

  /** Resolves once every message handed to `link` is acknowledged (the swap's cut timer bounds the wait). */
  private whenDrained(link: Link): Promise<void> {
    if (this.opts.queue.inFlightOn(link.id) === 0) return Promise.resolve();
    return new Promise((resolve) => (link.drained = resolve));
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

/** CONNACK return codes [MQTT-3.2.2.3] and TLS alerts into stable codes. */
function toConnectError(err: unknown, brokerUrl: string): DeviceError {
  if (err instanceof DeviceError) return err;
  const e = err as Error & { code?: unknown };
  if (typeof e.code === 'number') {
    if (e.code === 4 || e.code === 5) return new DeviceError('unauthorized', `the broker refused the connection: not authorized (CONNACK ${e.code})`, { cause: err, retryable: true });
    if (e.code === 2) return new DeviceError('identity_mismatch', 'the broker refused the client identifier (CONNACK 2)', { cause: err, retryable: false });
    return new DeviceError('connection_refused', `the broker refused the connection (CONNACK ${e.code})`, { cause: err });
  }
  // The broker's TLS alert about our certificate: it does not accept this identity.
  if (typeof e.code === 'string' && /ALERT_(CERTIFICATE|BAD_CERTIFICATE|UNKNOWN_CA|UNSUPPORTED_CERTIFICATE)/.test(e.code)) {
    return new DeviceError('unauthorized', `the broker refused our certificate during the TLS handshake (${e.code})`, { cause: err, retryable: true });
  }
  return transportError(err, `the broker ${brokerUrl}`) ?? new DeviceError('network', e.message ?? String(err), { cause: err });
}
