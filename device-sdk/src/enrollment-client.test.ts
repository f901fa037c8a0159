import { describe, expect, it } from 'vitest';
import { errorFromAnswer, ProvisioningClient } from './enrollment-client.js';

describe('errors from the provisioning service', () => {
  it.each([
    [401, 'invalid_token', false],
    [409, 'token_used', false],
    [403, 'revoked', false],
    [400, 'key_rejected', false],
    [429, 'rate_limited', true],
    [503, 'overloaded', true],
    [500, 'internal_error', true],
  ])('status %s with code %s is retryable: %s', (status, code, retryable) => {
    const err = errorFromAnswer(status, { error: { code, message: 'm' } }, undefined);
    expect(err).toMatchObject({ code, retryable, status, message: 'm' });
  });

  it('honours Retry-After in seconds, capped at an hour', () => {
    expect(errorFromAnswer(503, { error: { code: 'overloaded', message: 'busy' } }, '7').retryAfterMs).toBe(7000);
    expect(errorFromAnswer(429, undefined, '999999').retryAfterMs).toBe(3_600_000);
    expect(errorFromAnswer(429, undefined, 'soon').retryAfterMs).toBeUndefined();
  });

  it('maps a body-less 502 from a proxy to a retryable error and an unknown 4xx to a final one', () => {
    expect(errorFromAnswer(502, '<html>', undefined)).toMatchObject({ code: 'internal_error', retryable: true });
    expect(errorFromAnswer(418, { error: { code: 'teapot' } }, undefined)).toMatchObject({ code: 'bad_response', retryable: false });
  });

  it('talks only https', () => {
    expect(() => new ProvisioningClient('http://127.0.0.1:8443')).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});
