import type { LimitName } from './client-limits.js';

interface Entry {
  /** The identity that last set the topic; undefined for the broker's own messages. */
  readonly owner: string | undefined;
  readonly bytes: number;
}

/**
 * Who set each retained message, and how much each identity holds: the topic's bytes plus
 * the payload's. A retained message belongs to whoever last set its topic; replacing it
 * moves it, an empty payload clears it [MQTT-3.3.1-10], and either gives the bytes back.
 */
export class RetainedLedger {
  private readonly byTopic = new Map<string, Entry>();
  private readonly byOwner = new Map<string, { bytes: number; messages: number }>();
  private total = { bytes: 0, messages: 0 };

  constructor(private readonly maxBytes: number, private readonly maxMessages: number) {}

  /** Which limit setting `topic` to `payloadBytes` would take `owner` past; undefined when it fits. */
  refusal(owner: string, topic: string, payloadBytes: number): LimitName | undefined {
    if (payloadBytes === 0) return undefined;
    const held = this.byOwner.get(owner) ?? { bytes: 0, messages: 0 };
    const replaced = this.byTopic.get(topic);
    const own = replaced?.owner === owner ? replaced : undefined;
    const bytes = held.bytes - (own?.bytes ?? 0) + Buffer.byteLength(topic) + payloadBytes;
    const messages = held.messages - (own ? 1 : 0) + 1;
    if (messages > this.maxMessages) return 'retained_messages';
    if (bytes > this.maxBytes) return 'retained_bytes';
    return undefined;
  }

  /** Records that `owner` set `topic` to a payload of `payloadBytes` (0 clears it). */
  set(owner: string | undefined, topic: string, payloadBytes: number): void {
    const old = this.byTopic.get(topic);
    if (old) {
      this.byTopic.delete(topic);
      this.add(old.owner, -old.bytes, -1);
    }
    if (payloadBytes === 0) return;
    const bytes = Buffer.byteLength(topic) + payloadBytes;
    this.byTopic.set(topic, { owner, bytes });
    this.add(owner, bytes, 1);
  }

  /** What one identity holds now. */
  heldBy(owner: string): { bytes: number; messages: number } {
    return { ...(this.byOwner.get(owner) ?? { bytes: 0, messages: 0 }) };
  }

  get bytes(): number {
    return this.total.bytes;
  }

  get messages(): number {
    return this.total.messages;
  }

  private add(owner: string | undefined, bytes: number, messages: number): void {
    this.total = { bytes: this.total.bytes + bytes, messages: this.total.messages + messages };
    if (owner === undefined) return;
    const held = this.byOwner.get(owner) ?? { bytes: 0, messages: 0 };
    const next = { bytes: held.bytes + bytes, messages: held.messages + messages };
    if (next.messages <= 0) this.byOwner.delete(owner);
    else this.byOwner.set(owner, next);
  }
}
