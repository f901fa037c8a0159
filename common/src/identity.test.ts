import { describe, expect, it } from 'vitest';
import { isValidName, isValidTrustDomain, parseSpiffeUri, spiffeUri } from './identity.js';

describe('device ids', () => {
  it.each(['d1', 'sensor-0001', 'A.b_c-d', '0', 'x'.repeat(64)])('accepts %s', (id) => {
    expect(isValidName(id)).toBe(true);
  });
  it.each(['', 'a/b', 'a+b', 'a#', '$SYS', 'a\u0000b', 'x'.repeat(65), '-lead', '.hidden', 'sp ace', 'é', 'a\nb'])('refuses %j', (id) => {
    expect(isValidName(id)).toBe(false);
  });
});

describe('spiffe ids', () => {
  it('round-trips a device identity', () => {
    const id = { kind: 'device', name: 'd-1', trustDomain: 'fleet.example' } as const;
    expect(spiffeUri(id)).toBe('spiffe://fleet.example/device/d-1');
    expect(parseSpiffeUri(spiffeUri(id), 'fleet.example')).toEqual(id);
  });

  it.each([
    'spiffe://other.example/device/d1',
    'spiffe://fleet.example/device/d1/extra',
    'spiffe://fleet.example/robot/d1',
    'spiffe://fleet.example/device/a%2Fb',
    'spiffe://fleet.example/device/',
    'https://fleet.example/device/d1',
    'spiffe://Fleet.Example/device/d1',
  ])('refuses %s in trust domain fleet.example', (uri) => {
    expect(parseSpiffeUri(uri, 'fleet.example')).toBeUndefined();
  });

  it('checks trust domains are lower-case DNS names', () => {
    expect(isValidTrustDomain('tlsfleet.local')).toBe(true);
    expect(isValidTrustDomain('UPPER.case')).toBe(false);
    expect(isValidTrustDomain('has/slash')).toBe(false);
  });
});
