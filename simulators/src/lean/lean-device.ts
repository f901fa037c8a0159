import { connect, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import { connectPacket, DISCONNECT, FrameReader, PACKET, PINGREQ, publishPacket, withDup, type Frame } from './mqtt-wire.js';

/** Where and how a lean device connects; one object shared by a whole shard. */
export interface LeanTarget {
  host: string;
  port: number;
  keepaliveSeconds: number;
  /** TLS handshake + CONNACK, ms. */
  connectTimeoutMs: number;
  /** Reconnect delay: full jitter over min(max, initial × 2^attempt), ms. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** QoS 1 messages held unacknowledged (sent or waiting for a link) before `queue_full`. */
  maxInflight: number;
}

/**
 * What the device tells its owner, as calls on one object shared by every device of a shard
 * (a per-device listener set would cost memory in a fleet of thousands).
 */
export interface LeanDeviceHooks {
  connected(d: LeanDevice): void;
  disconnected(d: LeanDevice): void;
  /** A stable code (the device SDK's names): `network`, `connection_refused`, ... */
  error(d: LeanDevice, code: string): void;
  /**
   * The broker refused the session (CONNACK not authorized). Resolves with why the device
   * must enroll again (`revoked`, `expired`), or undefined to keep retrying.
   */
  refused(d: LeanDevice): Promise<{ code: string; message: string } | undefined>;
  /** The device stopped for good: it must enroll again. */
  stopped(d: LeanDevice, code: string, message: string): void;
}

export type LeanState = 'running' | 'reenrollment-required' | 'closed';
/** Called once per message: no error when PUBACKed (QoS 1) or written (QoS 0). */
export type PublishDone = (errorCode?: string) => void;

interface Inflight {
  packetId: number;
  packet: Buffer;
  sent: boolean;
  done: PublishDone;
}

/**
 * A simulated device's MQTT session with the least a device needs: its own key and
 * certificate over TLS (the SecureContext), CONNECT with clientId = device id, PUBLISH at
 * QoS 0 or 1 with PUBACK tracking, redelivery with DUP of what was not acknowledged when
 * the link comes back, PINGREQ, and reconnection with backoff. A refused CONNACK asks the
 * owner whether the identity is dead (revoked, expired): then it stops with that reason.
 */
export class LeanDevice {
  state: LeanState = 'running';
  connected = false;
  private socket: TLSSocket | undefined;
  private reader: FrameReader | undefined;
  private inflight: Inflight[] | undefined;
  private nextId = 1;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastSentAt = 0;
  private pinging = false;
  private closing: (() => void) | undefined;
  /** Waiting for the owner to say why the broker refused us. */
  private checking = false;
  /** Called once, at the first CONNACK accepted or the first link lost before one. */
  private firstOutcome: (() => void) | undefined;

  constructor(
    readonly id: string,
    /** The owner's index for this device. */
    readonly tag: number,
    private readonly context: SecureContext,
    private readonly target: LeanTarget,
    private readonly hooks: LeanDeviceHooks,
    private readonly localAddress?: string,
  ) {}

  /**
   * Opens the first link; reconnects by itself until closed or stopped. Resolves at the
   * first session accepted, or the first attempt that failed (the device keeps trying).
   */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.firstOutcome = resolve;
      this.open();
    });
  }

  private settleFirst(): void {
    this.firstOutcome?.();
    this.firstOutcome = undefined;
  }

  publish(topic: string, payload: Buffer, qos: 0 | 1, done: PublishDone): void {
    if (this.state !== 'running') return done(this.state === 'closed' ? 'closed' : 'revoked');
    if (qos === 0) {
      if (!this.connected) return done('not_connected');
      this.write(publishPacket(topic, payload, 0, 0));
      return done();
    }
    const inflight = (this.inflight ??= []);
    if (inflight.length >= this.target.maxInflight) return done('queue_full');
    const packetId = this.nextId;
    this.nextId = this.nextId === 65_535 ? 1 : this.nextId + 1;
    const entry: Inflight = { packetId, packet: publishPacket(topic, payload, 1, packetId), sent: false, done };
    inflight.push(entry);
    if (this.connected) this.send(entry);
  }

  /** Sends DISCONNECT and closes; what is unacknowledged fails with `closed`. */
  close(): Promise<void> {
    if (this.state === 'running') this.state = 'closed';
    clearTimeout(this.timer);
    this.failInflight('closed');
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.closing = resolve;
      if (this.connected) socket.end(DISCONNECT);
      else socket.destroy();
      // A peer that never answers the FIN must not hold the stop.
      setTimeout(() => socket.destroy(), 2000).unref();
    });
  }

  private open(): void {
    // localAddress reaches net.connect underneath (the TLS options' type does not list it).
    const options: ConnectionOptions & { localAddress?: string } = { host: this.target.host, port: this.target.port, secureContext: this.context, localAddress: this.localAddress, minVersion: 'TLSv1.2' };
    const socket = connect(options);
    this.socket = socket;
    this.reader = new FrameReader();
    let answered = false;
    const deadline = setTimeout(() => socket.destroy(Object.assign(new Error('no CONNACK in time'), { code: 'ETIMEDOUT' })), this.target.connectTimeoutMs);
    socket.once('secureConnect', () => this.write(connectPacket(this.id, this.target.keepaliveSeconds, true)));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader!.push(chunk, (f) => {
          if (f.type === PACKET.connack && !answered) {
            answered = true;
            clearTimeout(deadline);
            this.onConnack(f);
          } else this.onFrame(f);
        });
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.state === 'running') this.hooks.error(this, errorCode(err));
    });
    socket.on('close', () => {
      clearTimeout(deadline);
      this.onClose();
    });
  }

  private onConnack(f: Frame): void {
    const rc = f.body[1] ?? 255;
    if (rc !== 0) {
      this.socket?.destroy();
      this.hooks.error(this, 'connection_refused');
      if (rc === 4 || rc === 5) void this.askWhyRefused();
      return;
    }
    this.connected = true;
    this.settleFirst();
    this.attempt = 0;
    this.pinging = false;
    this.hooks.connected(this);
    // Redeliver what the last link did not see acknowledged (DUP), then what waited for a link.
    for (const entry of this.inflight ?? []) this.send(entry);
    this.keepalive();
  }

  private onFrame(f: Frame): void {
    if (f.type === PACKET.puback && f.body.length >= 2) {
      const packetId = f.body.readUInt16BE(0);
      const inflight = this.inflight;
      const i = inflight?.findIndex((e) => e.packetId === packetId && e.sent) ?? -1;
      if (i < 0) return;
      const [entry] = inflight!.splice(i, 1);
      if (inflight!.length === 0) this.inflight = undefined;
      entry!.done();
    } else if (f.type === PACKET.pingresp) this.pinging = false;
  }

  private onClose(): void {
    this.settleFirst();
    this.socket = undefined;
    this.reader = undefined;
    clearTimeout(this.timer);
    if (this.connected) {
      this.connected = false;
      this.hooks.disconnected(this);
    }
    if (this.closing) {
      this.closing();
      this.closing = undefined;
      return;
    }
    if (this.state !== 'running' || this.checking) return;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const cap = Math.min(this.target.maxDelayMs, this.target.initialDelayMs * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    this.timer = setTimeout(() => this.state === 'running' && this.open(), Math.random() * cap);
  }

  private async askWhyRefused(): Promise<void> {
    this.checking = true;
    let dead: { code: string; message: string } | undefined;
    try {
      dead = await this.hooks.refused(this);
    } catch {
      dead = undefined;
    }
    this.checking = false;
    if (this.state !== 'running') return; // closed meanwhile
    if (dead === undefined) return this.scheduleReconnect();
    this.state = 'reenrollment-required';
    this.failInflight(dead.code);
    this.hooks.stopped(this, dead.code, dead.message);
  }

  /** Every half keepalive: a PINGREQ when nothing was sent for half of it, so no gap reaches the keepalive. */
  private keepalive(): void {
    const halfMs = (this.target.keepaliveSeconds * 1000) / 2;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.connected) return;
      // No PINGRESP since the last ping: the link is dead though nobody said so.
      if (this.pinging) return void this.socket?.destroy();
      if (Date.now() - this.lastSentAt >= halfMs) {
        this.pinging = true;
        this.write(PINGREQ);
      }
      this.keepalive();
    }, halfMs);
  }

  private send(entry: Inflight): void {
    if (entry.sent) withDup(entry.packet);
    entry.sent = true;
    this.write(entry.packet);
  }

  private write(packet: Buffer): void {
    this.lastSentAt = Date.now();
    this.socket?.write(packet);
  }

  private failInflight(code: string): void {
    const inflight = this.inflight;
    this.inflight = undefined;
    for (const entry of inflight ?? []) entry.done(code);
  }
}

/** A socket error as the device SDK would name it. */
function errorCode(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED') return 'connection_refused';
  if (typeof err.code === 'string' && /CERT|UNABLE_TO_|SELF_SIGNED|ALTNAME/.test(err.code) && !/ALERT/.test(err.code)) return 'tls_verification_failed';
  return 'network';
}
