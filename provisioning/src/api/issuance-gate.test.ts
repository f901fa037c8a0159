import { describe, expect, it } from 'vitest';
import { TlsfleetError } from '@tlsfleet/common';
import { IssuanceGate } from './issuance-gate.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as TlsfleetError).code;
  }
}

describe('IssuanceGate', () => {
  it('answers overloaded with a Retry-After once the in-flight bound is reached, and admits again after a release', () => {
    const gate = new IssuanceGate({ maxInFlight: 2, perClientRate: 0 });
    const a = gate.admit('a');
    gate.admit('b');
    let err: TlsfleetError | undefined;
    try {
      gate.admit('c');
    } catch (e) {
      err = e as TlsfleetError;
    }
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
});
