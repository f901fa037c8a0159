import { isStrictBase64, TlsfleetError } from '@tlsfleet/common';
import { TOKEN_PATTERN } from '../enrollment/one-time-token.js';

export { TOKEN_PATTERN };

// RFC 7235 §2.1: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ].
const CREDENTIALS = /^(\S+)(?: +(.*))?$/;
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*$/;

/**
 * The enrollment token from an Authorization header, or undefined when there is none.
 * - `Bearer <token>`, the token raw or base64-encoded (libest sends base64(token)); the
 *   base64 form of a token never itself matches TOKEN_PATTERN, so the two cannot be confused.
 * - `Basic base64(user:token)` (RFC 7617): any user, the token as the password.
 * Throws `invalid_token` when the credentials are malformed or hold no well-formed token,
 * `unauthorized` for any other scheme (Digest, ...).
 */
export function tokenFromAuthorization(header: string | undefined): string | undefined {
  const value = header?.trim();
  if (value === undefined || value === '') return undefined;
  const [, scheme = '', credentials = ''] = CREDENTIALS.exec(value) ?? [];
  // Scheme names are case-insensitive (RFC 7235 §2.1).
  if (!/^(bearer|basic)$/i.test(scheme)) {
    throw new TlsfleetError('unauthorized', 'Only the Bearer and Basic authorization schemes are accepted.');
  }
  if (!TOKEN68.test(credentials)) throw new TlsfleetError('invalid_token', 'Malformed Authorization header.');

  if (scheme.toLowerCase() === 'bearer') {
    const token = TOKEN_PATTERN.test(credentials) ? credentials : decodeBase64(credentials);
    if (token !== undefined && TOKEN_PATTERN.test(token)) return token;
    throw new TlsfleetError('invalid_token');
  }
  const decoded = decodeBase64(credentials) ?? '';
  // RFC 7617 §2: the user-id ends at the first colon; the rest is the password.
  const password = decoded.slice(decoded.indexOf(':') + 1);
  if (decoded.includes(':') && TOKEN_PATTERN.test(password)) return password;
  throw new TlsfleetError('invalid_token');
}

function decodeBase64(value: string): string | undefined {
  return isStrictBase64(value) ? Buffer.from(value, 'base64').toString('latin1') : undefined;
}
