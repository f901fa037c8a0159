import { describe, expect, it } from 'vitest';
import { parseRevocationReason, parseSerialHex, REVOCATION_REASON_CODES } from './revocation-reason.js';

describe('parseSerialHex', () => {
  it.each([
    ['4a3f', '4a3f'],
    ['4A3F', '4a3f'],
    ['00004a3f', '4a3f'],
    ['4A:3F', '4a3f'],
    ['00:4a:3f', '4a3f'],
    ['0', '0'],
    ['7f'.repeat(20), '7f'.repeat(20)],
  ])('reads %s as %s', (input, serial) => {
    expect(parseSerialHex(input)).toBe(serial);
  });

  it.each(['', 'xyz', '4a 3f', '4a:3', ':4a', '4a::3f', '-1', '0x4a', '7f'.repeat(21)])('refuses %j with invalid_request', (input) => {
    expect(() => parseSerialHex(input)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});

describe('parseRevocationReason (RFC 5280 §5.3.1)', () => {
  it('defaults to unspecified and accepts every recorded name with its code', () => {
    expect(parseRevocationReason(undefined)).toBe('unspecified');
    expect(parseRevocationReason(null)).toBe('unspecified');
    expect(REVOCATION_REASON_CODES).toEqual({
      unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5, privilegeWithdrawn: 9, aACompromise: 10,
    });
    for (const name of Object.keys(REVOCATION_REASON_CODES)) expect(parseRevocationReason(name)).toBe(name);
  });

  it.each(['certificateHold', 'removeFromCRL', 'KeyCompromise', 'key_compromise', 1, 'toString', '__proto__'])('refuses %j with invalid_request', (reason) => {
    expect(() => parseRevocationReason(reason)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});
