import { describe, expect, it } from 'vitest';
import { TlsfleetError } from '@tlsfleet/common';
import { IssuanceGate } from './issuance-gate.js';

function errorOf(fn: () => unknown): TlsfleetError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err as TlsfleetError;
  }
}

const codeOf = (fn: () => unknown): string | undefined => errorOf(fn)?.code;

describe('IssuanceGate', () => {
  it('answers overloaded with a Retry-After once the in-flight bound is reached, and admits again after a release', () => {
    const gate = new IssuanceGate({ maxInFlight: 2, perClientRate: 0 });
    const a = gate.admit('a');
    gate.admit('b');
    const err = errorOf(() => gate.admit('c'));
    expect(err?.code).toBe('overloaded');
    expect(err?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    a();
    a(); // releasing twice must not free two places
    expect(gate.current).toBe(1);
    expect(codeOf(() => gate.admit('c'))).toBeUndefined();
    expect(codeOf(() => gate.admit('d'))).toBe('overloaded');
  });

  it('rate-limits one client past its burst while others still get in, and refills with time', () => {
    let now = 0;
    const gate = new IssuanceGate({ maxInFlight: 1000, perClientRate: 2, perClientBurst: 3, now: () => now });
    for (let i = 0; i < 3; i++) gate.admit('10.0.0.1')();
    expect(codeOf(() => gate.admit('10.0.0.1'))).toBe('rate_limited');
    expect(codeOf(() => gate.admit('10.0.0.2'))).toBeUndefined();
    now += 500; // 2/s → one token back
    expect(codeOf(() => gate.admit('10.0.0.1')())).toBeUndefined();
    expect(codeOf(() => gate.admit('10.0.0.1'))).toBe('rate_limited');
  });

  it('does not count a refused request as in flight', () => {
    let now = 0;
    const gate = new IssuanceGate({ maxInFlight: 5, perClientRate: 1, perClientBurst: 1, now: () => now });
    gate.admit('x');
    expect(codeOf(() => gate.admit('x'))).toBe('rate_limited');
    expect(gate.current).toBe(1);
  });

  it('keeps the renewal reserve: enrollments stop at maxInFlight - reserve while renewals still get in', () => {
    const gate = new IssuanceGate({ maxInFlight: 4, renewalReserve: 2, perClientRate: 0 });
    gate.admit('address:a', 'enroll');
    gate.admit('address:b', 'enroll');
    expect(codeOf(() => gate.admit('address:c', 'enroll'))).toBe('overloaded');
    expect(codeOf(() => gate.admit('device:d1', 'renew'))).toBeUndefined();
    expect(codeOf(() => gate.admit('device:d2', 'renew'))).toBeUndefined();
    expect(codeOf(() => gate.admit('device:d3', 'renew'))).toBe('overloaded');
  });

  it('reserves a quarter of maxInFlight for renewals by default, and refuses a reserve that leaves enrollments nothing', () => {
    const gate = new IssuanceGate({ maxInFlight: 8, perClientRate: 0 });
    for (let i = 0; i < 6; i++) gate.admit(`address:${i}`, 'enroll');
    expect(codeOf(() => gate.admit('address:x', 'enroll'))).toBe('overloaded');
    expect(codeOf(() => gate.admit('device:y', 'renew'))).toBeUndefined();
    expect(() => new IssuanceGate({ maxInFlight: 2, renewalReserve: 2 })).toThrow(RangeError);
  });

  it('caps the open requests of one client before its body is read, and frees the place when one ends', () => {
    const gate = new IssuanceGate({ maxInFlightPerClient: 2 });
    const first = gate.enter('address:127.0.0.2');
    gate.enter('address:127.0.0.2');
    const err = errorOf(() => gate.enter('address:127.0.0.2'));
    expect(err?.code).toBe('rate_limited');
    expect(err?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(codeOf(() => gate.enter('address:127.0.0.3'))).toBeUndefined();
    first();
    first();
    expect(gate.openOf('address:127.0.0.2')).toBe(1);
    expect(codeOf(() => gate.enter('address:127.0.0.2'))).toBeUndefined();
    expect(gate.current).toBe(0); // entering is not admission: nothing is in flight yet
  });
});
