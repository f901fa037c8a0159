/** Why a `tlsfleet ca ...` step refused; each refusal changes nothing on disk. */
export type CaRotationCode =
  | 'pending_exists'
  | 'no_pending_key'
  | 'previous_not_retired'
  | 'no_previous'
  | 'invalid_csr'
  | 'invalid_root'
  | 'invalid_certificate'
  | 'key_mismatch'
  | 'not_signed_by_root'
  | 'not_valid_now'
  | 'outlives_root'
  | 'name_constraints_differ'
  | 'too_early'
  | 'not_empty'
  | 'trust_domain_differs'
  | 'already_trusted'
  | 'not_trusted'
  | 'root_in_use'
  | 'last_root'
  | 'live_certificates';

export class CaRotationError extends Error {
  readonly code: CaRotationCode;
  constructor(code: CaRotationCode, message: string) {
    super(message);
    this.name = 'CaRotationError';
    this.code = code;
  }
}
