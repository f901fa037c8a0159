import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OutboundQueue } from './outbound-queue.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
function journal(): string {
  dir = mkdtempSync(join(tmpdir(), 'tlsfleet-queue-'));
  return join(dir, 'outbox.jsonl');
}

describe('the outbound QoS 1 queue', () => {
  it('resolves a message on its PUBACK and frees its room', async () => {
    const q = new OutboundQueue({ maxMessages: 2 });
    const { message, acked } = q.add('devices/d/t', Buffer.from('x'), false);
    q.ack(message.id);
    await expect(acked).resolves.toBeUndefined();
    expect(q.size).toBe(0);
    expect(q.byteSize).toBe(0);
  });

  it('refuses beyond the message count, with a retryable queue_full, and keeps what it has', () => {
    const q = new OutboundQueue({ maxMessages: 2 });
    q.add('t', Buffer.from('a'), false);
    q.add('t', Buffer.from('b'), false);
    expect(() => q.add('t', Buffer.from('c'), false)).toThrow(expect.objectContaining({ code: 'queue_full', retryable: true }));
    expect(q.size).toBe(2);
  });

  it('refuses beyond the byte bound', () => {
    const q = new OutboundQueue({ maxBytes: 10 });
    q.add('t', Buffer.alloc(6), false);
    expect(() => q.add('t', Buffer.alloc(5), false)).toThrow(expect.objectContaining({ code: 'queue_full' }));
    q.add('t', Buffer.alloc(4), false);
    expect(q.byteSize).toBe(10);
  });

  it('hands a lost link’s unacknowledged messages to the next link, oldest first', () => {
    const q = new OutboundQueue();
    const a = q.add('t', Buffer.from('1'), false).message;
    const b = q.add('t', Buffer.from('2'), false).message;
    a.link = 1;
    b.link = 1;
    expect(q.inFlightOn(1)).toBe(2);
    expect(q.pendingFor(1)).toEqual([]);
    q.ack(a.id);
    q.linkLost(1);
    expect(q.pendingFor(2).map((m) => m.payload.toString())).toEqual(['2']);
  });

  it('with a journal, unacknowledged messages survive a restart and acknowledged ones do not', () => {
    const path = journal();
    const q1 = new OutboundQueue({ journalPath: path });
    const m1 = q1.add('devices/d/a', Buffer.from('one'), false).message;
    q1.add('devices/d/b', Buffer.from('two'), true);
    q1.add('devices/d/c', Buffer.from([0, 255, 1]), false);
    q1.ack(m1.id);
    // no close(): a crash
    const q2 = new OutboundQueue({ journalPath: path });
    expect(q2.pendingFor(1).map((m) => [m.topic, m.payload.toString('hex'), m.retain])).toEqual([
      ['devices/d/b', Buffer.from('two').toString('hex'), true],
      ['devices/d/c', '00ff01', false],
    ]);
    const next = q2.add('devices/d/d', Buffer.from('4'), false).message;
    expect(next.id).toBeGreaterThan(3);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('ignores a line torn by a crash mid-append', async () => {
    const path = journal();
    const q1 = new OutboundQueue({ journalPath: path });
    q1.add('t/a', Buffer.from('kept'), false);
    q1.close(new Error('closed'));
    const { appendFileSync } = await import('node:fs');
    appendFileSync(path, '{"a":9,"t":"t/b","p":"AAA');
    expect(new OutboundQueue({ journalPath: path }).pendingFor(0).map((m) => m.topic)).toEqual(['t/a']);
  });

  it('rejects waiting callers when closed', async () => {
    const q = new OutboundQueue();
    const { acked } = q.add('t', Buffer.from('x'), false);
    q.close(new Error('closed'));
    await expect(acked).rejects.toThrow('closed');
  });
});
