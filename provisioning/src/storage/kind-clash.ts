import { TlsfleetError, type TokenKind } from '@tlsfleet/common';

/**
 * A device id and a service name may not share a name (the broker's ACL keys on it): the
 * refusal a store throws, inside the enrollment's transaction, when the name is taken by
 * the other kind.
 */
export function kindClash(name: string, wanted: TokenKind): TlsfleetError {
  const other = wanted === 'device' ? 'service' : 'device';
  return new TlsfleetError('invalid_request', `${name} is already enrolled as a ${other}.`);
}
