import { EventEmitter } from 'node:events';
import type { Client } from 'aedes';
import memoryPersistence from 'aedes-persistence';
import { describe, expect, it } from 'vitest';
import { AlreadySettled, ignoreSettledDeliveries, settleQueueRaces } from './resumed-session-queue.js';

interface Queue {
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: object): Promise<void>;
  outgoingUpdate(client: { id: string }, packet: object): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: object): Promise<unknown>;
  outgoingStream(client: { id: string }): AsyncIterable<{ brokerCounter: number; messageId?: number }>;
}

const client = { id: 'dev-1' };
const message = (brokerCounter: number) => ({ cmd: 'publish', brokerId: 'b1', brokerCounter, topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, dup: false });

async function queueWith(...counters: number[]): Promise<Queue> {
  const queue = settleQueueRaces((memoryPersistence as unknown as () => Queue)());
  for (const n of counters) await queue.outgoingEnqueueCombi([{ clientId: client.id }], message(n));
  return queue;
}

async function stored(queue: Queue): Promise<Array<{ brokerCounter: number; messageId?: number }>> {
  const out = [];
  for await (const p of queue.outgoingStream(client)) out.push({ brokerCounter: p.brokerCounter, messageId: p.messageId });
  return out;
}

describe('settleQueueRaces', () => {
  it('marks a queued message with its packet identifier, as before', async () => {
    const queue = await queueWith(1, 2);
    await queue.outgoingUpdate(client, { ...message(2), messageId: 7 });
    expect(await stored(queue)).toEqual([{ brokerCounter: 1, messageId: undefined }, { brokerCounter: 2, messageId: 7 }]);
  });

  it('rejects with AlreadySettled when the PUBLISH was acknowledged before this copy reached the queue', async () => {
    const queue = await queueWith(1);
    await queue.outgoingUpdate(client, { ...message(1), messageId: 7 });
    await queue.outgoingClearMessageId(client, { messageId: 7 });
    await expect(queue.outgoingUpdate(client, { ...message(1), messageId: 7 })).rejects.toBeInstanceOf(AlreadySettled);
  });

  it('leaves any other failure as it was: a PUBREL for no stored packet', async () => {
    const queue = await queueWith();
    await expect(queue.outgoingUpdate(client, { cmd: 'pubrel', messageId: 9 })).rejects.toThrow(/^no such packet$/);
  });

  it('clears nothing for a packet without an identifier (a refused live delivery), where it cleared the oldest message not yet sent', async () => {
    const queue = await queueWith(1, 2, 3);
    await queue.outgoingUpdate(client, { ...message(3), messageId: 5 });
    expect(await queue.outgoingClearMessageId(client, message(3))).toBeUndefined();
    expect((await stored(queue)).map((p) => p.brokerCounter)).toEqual([1, 2, 3]);
    // An acknowledgement still clears its own message.
    await queue.outgoingClearMessageId(client, { messageId: 5 });
    expect((await stored(queue)).map((p) => p.brokerCounter)).toEqual([1, 2]);
  });
});

describe('ignoreSettledDeliveries', () => {
  it('drops an AlreadySettled error event and counts it; every other error still reaches the listeners', () => {
    const emitter = new EventEmitter();
    const seen: unknown[] = [];
    emitter.on('error', (err) => seen.push(err));
    let settled = 0;
    ignoreSettledDeliveries(() => settled++)(emitter as unknown as Client, undefined as never);
    emitter.emit('error', new AlreadySettled());
    const other = new Error('connection closed');
    emitter.emit('error', other);
    emitter.emit('other-event', 1);
    expect(settled).toBe(1);
    expect(seen).toEqual([other]);
  });
});
