import { TlsfleetError, type TokenKind } from '@tlsfleet/common';
import type { Logger } from '../logger.js';
import type { ProvisioningMetrics } from '../metrics.js';
import { hookTarget, postJson, type HookTarget } from './post-json.js';

/** Exactly what the enrollment hook receives: nothing secret, nothing the device could not show anyone. */
export interface EnrollmentRequest {
  readonly device: string;
  readonly kind: TokenKind;
  /** SHA-256 of the CSR's SubjectPublicKeyInfo DER, lowercase hex. */
  readonly publicKeySha256: string;
  /** The client's address as the service sees it. */
  readonly address: string;
}

/** Asks whether an enrollment may go on; throws `forbidden` when not. */
export type ApproveEnrollment = (request: EnrollmentRequest) => Promise<void>;

export interface EnrollHookOptions {
  /** `--enroll-hook`: https URL, or http to a loopback address. */
  url: string;
  /** `--hook-ca`: PEM trust anchors for an https hook, instead of the system CAs. */
  ca?: string;
  /** Time the hook has to answer, ms; default 5 s (the stable promise). */
  timeoutMs?: number;
}

export const ENROLL_HOOK_TIMEOUT_MS = 5_000;

/** Why the hook did not allow: `denied` is its own answer, the others are failures, each refusing. */
export type HookResult = 'allowed' | 'denied' | 'status' | 'invalid_answer' | 'timeout' | 'connection' | 'too_large';

/**
 * The enrollment approval hook (`provisioning --enroll-hook`): POSTs the request as JSON and
 * allows only a 2xx whose JSON body has `"allow": true`, within the time bound. Every answer
 * is logged (device, decision, latency, reason) and counted by result.
 */
export function enrollHook(opts: EnrollHookOptions, logger: Logger, metrics: ProvisioningMetrics): ApproveEnrollment {
  const target: HookTarget = hookTarget(opts.url, '--enroll-hook', opts.ca);
  const timeoutMs = opts.timeoutMs ?? ENROLL_HOOK_TIMEOUT_MS;
  return async (request) => {
    const started = process.hrtime.bigint();
    const body = JSON.stringify({ device: request.device, kind: request.kind, publicKeySha256: request.publicKeySha256, address: request.address });
    const outcome = await postJson(target, body, timeoutMs);
    const { result, reason } = decide(outcome);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.enrollHook.inc({ result });
    metrics.enrollHookSeconds.observe(seconds);
    const line = { device: request.device, kind: request.kind, address: request.address, decision: result === 'allowed' ? 'allow' : 'refuse', result, reason, latencyMs: Math.round(seconds * 1000) };
    if (result === 'allowed' || result === 'denied') logger.info(line, 'enroll hook answered');
    else logger.warn(line, 'enroll hook failed; enrollment refused');
    if (result !== 'allowed') {
      throw new TlsfleetError('forbidden', result === 'denied' ? 'The enrollment hook did not approve this enrollment.' : 'The enrollment hook could not approve this enrollment; try again later.');
    }
  };
}

function decide(outcome: Awaited<ReturnType<typeof postJson>>): { result: HookResult; reason: string } {
  if (!outcome.ok) return { result: outcome.failure, reason: outcome.detail };
  if (outcome.status < 200 || outcome.status > 299) return { result: 'status', reason: `HTTP ${outcome.status}` };
  let answer: unknown;
  try {
    answer = JSON.parse(outcome.body.toString('utf8'));
  } catch {
    return { result: 'invalid_answer', reason: 'the answer is not JSON' };
  }
  if (typeof answer !== 'object' || answer === null) return { result: 'invalid_answer', reason: 'the answer is not a JSON object' };
  const allow = (answer as { allow?: unknown }).allow;
  if (allow === true) return { result: 'allowed', reason: 'allow: true' };
  if (allow === false) return { result: 'denied', reason: 'allow: false' };
  return { result: 'invalid_answer', reason: 'the answer has no boolean "allow"' };
}
