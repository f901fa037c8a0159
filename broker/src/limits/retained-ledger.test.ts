import { describe, expect, it } from 'vitest';
import { RetainedLedger } from './retained-ledger.js';

describe('RetainedLedger', () => {
  it('books topic and payload bytes to the identity that set them, and gives them back when cleared', () => {
    const ledger = new RetainedLedger(1000, 10);
    ledger.set('d1', 'a/b', 7);
    expect(ledger.heldBy('d1')).toEqual({ bytes: 10, messages: 1 });
    ledger.set('d1', 'a/b', 0);
    expect(ledger.heldBy('d1')).toEqual({ bytes: 0, messages: 0 });
    expect([ledger.bytes, ledger.messages]).toEqual([0, 0]);
  });

  it('moves a topic to whoever replaced it', () => {
    const ledger = new RetainedLedger(1000, 10);
    ledger.set('d1', 't', 9);
    ledger.set('svc', 't', 4);
    expect(ledger.heldBy('d1').messages).toBe(0);
    expect(ledger.heldBy('svc')).toEqual({ bytes: 5, messages: 1 });
    expect(ledger.bytes).toBe(5);
  });

  // Each topic here is one byte long: a message books 1 + its payload's bytes.
  it.each([
    ['a new topic past the message count', 1000, 2, [['x', 1], ['y', 1]], 'z', 1, 'retained_messages'],
    ['a new topic past the bytes', 10, 100, [['x', 5]], 'y', 5, 'retained_bytes'],
    ['replacing its own topic with the same size', 1000, 2, [['x', 1], ['y', 1]], 'x', 1, undefined],
    ['growing its own topic up to the bytes', 10, 100, [['x', 1]], 'x', 9, undefined],
    ['a clear, whatever it holds', 1000, 1, [['x', 1]], 'y', 0, undefined],
  ] as const)('judges %s', (_what, maxBytes, maxMessages, held, topic, bytes, refusal) => {
    const ledger = new RetainedLedger(maxBytes, maxMessages);
    for (const [t, n] of held) ledger.set('d1', t, n);
    expect(ledger.refusal('d1', topic, bytes)).toBe(refusal);
  });

  it('judges a topic another identity set as a new one for the sender', () => {
    const ledger = new RetainedLedger(1000, 1);
    ledger.set('d1', 'x', 1);
    ledger.set('d2', 'shared', 1);
    expect(ledger.refusal('d1', 'shared', 1)).toBe('retained_messages');
  });
});
