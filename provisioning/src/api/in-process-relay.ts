import { TlsfleetError } from '@tlsfleet/common';
import { readRelayedRenewal, relayedPeer } from '../enrollment/relayed-renewal.js';
import type { ApiContext } from './context.js';
import { csrFromPem, enrollResponse } from './enroll-route.js';

/** What a broker sharing this process asks for: a renewal for the identity and certificate of one of its sessions. */
export interface RelayedRenewal {
  readonly device: string;
  readonly serial: string;
  readonly csrPem: string;
}

export type RenewAnswer = ReturnType<typeof enrollResponse>;

/**
 * POST /v1/relay/renew without HTTP, for a broker in the same process (`tlsfleet dev`): the
 * same checks, the same admission (per-device rate, in-flight bound with the renewal
 * reserve), the same metrics. Refusals throw TlsfleetError.
 */
export function inProcessRelay(ctx: ApiContext): (req: RelayedRenewal) => Promise<RenewAnswer> {
  return async (req) => {
    const started = process.hrtime.bigint();
    const relayed = readRelayedRenewal({ device: req.device, serial: req.serial, csr: req.csrPem }, csrFromPem);
    const release = admitRelayed(ctx, relayed.device);
    ctx.metrics.issuanceInFlight.inc();
    try {
      const issued = await ctx.authority.renew(await relayedPeer(ctx.store, relayed, ctx.trustDomain), relayed.csrDer);
      ctx.metrics.renewals.inc({ result: issued.replayed ? 'replayed' : 'issued' });
      ctx.metrics.issuanceSeconds.observe({ operation: 'renew_relayed' }, Number(process.hrtime.bigint() - started) / 1e9);
      ctx.logger.info({ operation: 'renew-relayed', subject: issued.identity.name, serial: issued.serial, notAfter: issued.notAfter, replayed: issued.replayed, relay: 'in-process' }, 'certificate issued');
      return enrollResponse(issued);
    } catch (err) {
      ctx.metrics.renewals.inc({ result: err instanceof TlsfleetError ? err.code : 'internal_error' });
      throw err;
    } finally {
      release();
      ctx.metrics.issuanceInFlight.dec();
    }
  };
}

/**
 * A relayed renewal's place in the issuance gate: counted per relayed device (rate, in-flight
 * bound, renewal reserve), as the device's own renewal would be. A refusal is counted as shed.
 */
export function admitRelayed(ctx: ApiContext, device: string): () => void {
  try {
    return ctx.gate.admit(`device:${device}`, 'renew');
  } catch (err) {
    if (err instanceof TlsfleetError) ctx.metrics.shed.inc({ reason: err.code });
    throw err;
  }
}
