import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TlsfleetError } from '@tlsfleet/common';
import { TOKEN_PATTERN, tokenFromAuthorization } from './token-auth.js';

const token = `tf_${randomBytes(16).toString('base64url')}`;
const b64 = (text: string): string => Buffer.from(text).toString('base64');

function codeOf(header: string): string | undefined {
  try {
    tokenFromAuthorization(header);
  } catch (error) {
    return error instanceof TlsfleetError ? error.code : `not a TlsfleetError: ${String(error)}`;
  }
  return undefined;
}

describe('TOKEN_PATTERN', () => {
  it('matches a token of 128 random bits and nothing shorter or off-alphabet', () => {
    expect(TOKEN_PATTERN.test(token)).toBe(true);
    expect(TOKEN_PATTERN.test(token.slice(0, -1))).toBe(false);
    expect(TOKEN_PATTERN.test(`${token}=`)).toBe(false);
    expect(TOKEN_PATTERN.test(token.replace('tf_', 'tk_'))).toBe(false);
  });
});

describe('tokenFromAuthorization', () => {
  it('returns undefined when there is no Authorization header', () => {
    expect(tokenFromAuthorization(undefined)).toBeUndefined();
    expect(tokenFromAuthorization('')).toBeUndefined();
    expect(tokenFromAuthorization('   ')).toBeUndefined();
  });

  it.each<[string, () => string]>([
    ['a raw bearer token', () => `Bearer ${token}`],
    ['a base64-encoded bearer token, as libest sends it', () => `Bearer ${b64(token)}`],
    ['the scheme in any case', () => `bEARER ${token}`],
    ['several spaces after the scheme', () => `Bearer   ${token}`],
    ['Basic with the token as the password', () => `Basic ${b64(`device-7:${token}`)}`],
    ['Basic with an empty user', () => `Basic ${b64(`:${token}`)}`],
    ['Basic in lower case', () => `basic ${b64(`estuser:${token}`)}`],
  ])('reads %s', (_name, header) => {
    expect(tokenFromAuthorization(header())).toBe(token);
  });

  it.each<[string, () => string]>([
    ['a bearer scheme with no token', () => 'Bearer'],
    ['a bearer scheme with only spaces', () => 'Bearer    '],
    ['a bearer token of the wrong shape', () => 'Bearer abc123'],
    ['a base64 bearer token that decodes to the wrong shape', () => `Bearer ${b64('not-a-token-at-all-really')}`],
    ['a base64 bearer token that decodes to binary', () => `Bearer ${randomBytes(30).toString('base64')}`],
    ['base64 of a base64 token (decoded once only)', () => `Bearer ${b64(b64(token))}`],
    ['a bearer token with a second word', () => `Bearer ${token} extra`],
    ['a bearer token glued to a comma', () => `Bearer ${token},`],
    ['Basic without a colon', () => `Basic ${b64(token)}`],
    ['Basic with a well-formed user but a bad password', () => `Basic ${b64(`${token}:secret`)}`],
    ['Basic that is not base64', () => `Basic ${token}:x`],
    ['Basic with the raw user:token, not encoded', () => `Basic device:${token}`],
  ])('refuses %s with invalid_token', (_name, header) => {
    expect(codeOf(header())).toBe('invalid_token');
  });

  it.each([
    ['Digest', 'Digest username="estuser", realm="estrealm", nonce="abc", response="def"'],
    ['a scheme alone', 'Negotiate'],
    ['a token without a scheme', `${token}`],
  ])('refuses %s with unauthorized', (_name, header) => {
    expect(codeOf(header)).toBe('unauthorized');
  });
});
