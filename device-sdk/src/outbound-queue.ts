import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { writeFileAtomicSync } from '@tlsfleet/common';
import { DeviceError } from './errors.js';

export interface OutboundQueueOptions {
  /** Messages waiting for a PUBACK, sent or not. Default 1000. */
  maxMessages?: number;
  /** Payload bytes of those messages. Default 1 MiB. */
  maxBytes?: number;
  /**
   * Journal file: messages survive a restart or crash of the process. Each line is
   * appended without fsync, so a power cut may lose the last few; default none (memory).
   */
  journalPath?: string;
}

export interface QueuedMessage {
  readonly id: number;
  readonly topic: string;
  readonly payload: Buffer;
  readonly retain: boolean;
  /** The link it was last handed to; undefined while it waits for one. */
  link: number | undefined;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/** Journal lines: an add, or the PUBACK that settled one. */
type JournalLine = { a: number; t: string; p: string; r?: 1 } | { k: number };

/**
 * QoS 1 messages from publish() until their PUBACK. The queue, not mqtt.js, is the
 * source of truth: a new link (reconnect, certificate swap) resends what the old one
 * left unacknowledged, so nothing is lost when a session moves (duplicates are what
 * QoS 1 allows). Bounded in count and bytes; a full queue refuses, it never drops.
 */
export class OutboundQueue {
  readonly maxMessages: number;
  readonly maxBytes: number;
  private readonly messages = new Map<number, QueuedMessage>();
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private bytes = 0;
  private journalFd: number | undefined;
  private readonly journalPath: string | undefined;
  private journalLines = 0;

  constructor(opts: OutboundQueueOptions = {}) {
    this.maxMessages = opts.maxMessages ?? 1000;
    this.maxBytes = opts.maxBytes ?? 1024 * 1024;
    this.journalPath = opts.journalPath;
    if (this.journalPath !== undefined) this.openJournal(this.journalPath);
  }

  get size(): number {
    return this.messages.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** Queues a message; the promise settles on its PUBACK (or rejects when the queue closes). */
  add(topic: string, payload: Buffer, retain: boolean): { message: QueuedMessage; acked: Promise<void> } {
    if (this.messages.size + 1 > this.maxMessages || this.bytes + payload.length > this.maxBytes) {
      throw new DeviceError('queue_full', `the outbound queue holds ${this.messages.size} messages / ${this.bytes} bytes (limits ${this.maxMessages} / ${this.maxBytes})`);
    }
    const message: QueuedMessage = { id: this.nextId++, topic, payload, retain, link: undefined };
    this.journal({ a: message.id, t: topic, p: payload.toString('base64'), ...(retain ? { r: 1 as const } : {}) });
    this.messages.set(message.id, message);
    this.bytes += payload.length;
    const acked = new Promise<void>((resolve, reject) => this.waiters.set(message.id, { resolve, reject }));
    // Nobody has to await it: a message outliving its caller is still delivered.
    acked.catch(() => {});
    return { message, acked };
  }

  /** Messages not yet handed to `link`, oldest first. */
  pendingFor(link: number): QueuedMessage[] {
    return [...this.messages.values()].filter((m) => m.link !== link);
  }

  /** Messages handed to `link` and not yet acknowledged. */
  inFlightOn(link: number): number {
    let n = 0;
    for (const m of this.messages.values()) if (m.link === link) n++;
    return n;
  }

  /** The link went down: what it carried unacknowledged waits for the next one. */
  linkLost(link: number): void {
    for (const m of this.messages.values()) if (m.link === link) m.link = undefined;
  }

  ack(id: number): void {
    const message = this.messages.get(id);
    if (message === undefined) return;
    this.messages.delete(id);
    this.bytes -= message.payload.length;
    this.journal({ k: id });
    this.waiters.get(id)?.resolve();
    this.waiters.delete(id);
    this.compactIfWorthIt();
  }

  /** Rejects every waiting caller; the messages themselves stay in the journal for the next run. */
  close(err: Error): void {
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
    if (this.journalFd !== undefined) closeSync(this.journalFd);
    this.journalFd = undefined;
  }

  private openJournal(path: string): void {
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let entry: JournalLine;
      try {
        entry = JSON.parse(line) as JournalLine;
      } catch {
        continue; // a line torn by a crash mid-append: the message was never acknowledged to the caller either
      }
      if ('k' in entry) {
        const m = this.messages.get(entry.k);
        if (m) {
          this.messages.delete(entry.k);
          this.bytes -= m.payload.length;
        }
      } else if (typeof entry.a === 'number' && typeof entry.t === 'string' && typeof entry.p === 'string') {
        const payload = Buffer.from(entry.p, 'base64');
        this.messages.set(entry.a, { id: entry.a, topic: entry.t, payload, retain: entry.r === 1, link: undefined });
        this.bytes += payload.length;
        this.nextId = Math.max(this.nextId, entry.a + 1);
      }
    }
    this.rewriteJournal(path);
  }

  private journal(line: JournalLine): void {
    if (this.journalFd === undefined) return;
    writeSync(this.journalFd, JSON.stringify(line) + '\n');
    this.journalLines++;
  }

  private compactIfWorthIt(): void {
    if (this.journalPath === undefined || this.journalLines < 1000 || this.journalLines < 4 * this.messages.size) return;
    closeSync(this.journalFd!);
    this.rewriteJournal(this.journalPath);
  }

  /** The journal shrunk to the live messages, swapped in atomically. */
  private rewriteJournal(path: string): void {
    const lines = [...this.messages.values()].map((m) => JSON.stringify({ a: m.id, t: m.topic, p: m.payload.toString('base64'), ...(m.retain ? { r: 1 } : {}) }) + '\n');
    writeFileAtomicSync(path, lines.join(''), 0o600);
    this.journalFd = openSync(path, 'a', 0o600);
    this.journalLines = lines.length;
  }
}
