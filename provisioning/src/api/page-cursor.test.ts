import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, page, pageLimit } from './page-cursor.js';

describe('page cursors', () => {
  it('round-trips the last key of a page', () => {
    expect(decodeCursor('devices', encodeCursor('devices', 'dev-1.a_b'))).toBe('dev-1.a_b');
    expect(decodeCursor('audit', encodeCursor('audit', '12345'))).toBe('12345');
  });

  it.each([
    ['garbled', 'not a cursor!'],
    ['base64 with padding', `${encodeCursor('devices', 'dev-1')}=`],
    ['cut short', encodeCursor('devices', 'device-number-one').slice(0, -3)],
    ['from the other listing', encodeCursor('audit', '7')],
    ['a key that is no device id', Buffer.from('devices:a/b').toString('base64url')],
    ['an audit key that is no record id', Buffer.from('audit:0').toString('base64url')],
    ['empty', ''],
    ['huge', 'A'.repeat(500)],
  ])('refuses a %s cursor with invalid_request', (_name, cursor) => {
    const kind = _name === 'from the other listing' || _name.startsWith('a key') ? 'devices' : _name.startsWith('an audit') ? 'audit' : 'devices';
    expect(() => decodeCursor(kind, cursor)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it.each([
    [undefined, 100],
    ['1', 1],
    ['1000', 1000],
  ])('reads limit %j as %d', (value, limit) => {
    expect(pageLimit(value)).toBe(limit);
  });

  it.each(['0', '1001', '-1', '1.5', 'ten', '', '99999999'])('refuses limit %j', (value) => {
    expect(() => pageLimit(value)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it('gives a next cursor only when a row beyond the limit was read', () => {
    expect(page('devices', ['a', 'b', 'c'], 2, (x) => x)).toEqual({ items: ['a', 'b'], nextCursor: encodeCursor('devices', 'b') });
    expect(page('devices', ['a', 'b'], 2, (x) => x)).toEqual({ items: ['a', 'b'], nextCursor: null });
    expect(page('devices', [], 2, (x) => x)).toEqual({ items: [], nextCursor: null });
  });
});
