import type { RequestHandler } from 'express';
import type { CertificateStatus, CertificateSummary, DeviceSummary } from '@tlsfleet/common';
import type { CertificateRecord, DeviceRecord } from '../storage/store.js';
import type { ApiContext } from './context.js';

/** GET /v1/devices (admin) → `{devices: [DeviceSummary]}`. */
export const listDevicesRoute: RequestHandler = async (_req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const devices = await ctx.authority.devices();
  const now = Date.now();
  const out: DeviceSummary[] = [];
  for (const d of devices) out.push(summary(d, await ctx.store.listCertificates(d.id), now));
  res.json({ devices: out });
};

/** GET /v1/devices/:id (admin) → DeviceSummary. */
export const getDeviceRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const { device, certificates } = await ctx.authority.device(String(req.params.id));
  res.json(summary(device, certificates, Date.now()));
};

function summary(d: DeviceRecord, certs: CertificateRecord[], now: number): DeviceSummary {
  return {
    deviceId: d.id,
    kind: d.kind,
    createdAt: new Date(d.createdAt).toISOString(),
    certTtlSeconds: d.certTtlSeconds,
    certificates: certs.map((c): CertificateSummary => {
      const status: CertificateStatus = c.revokedAt !== undefined ? 'revoked' : c.notAfter <= now ? 'expired' : 'valid';
      return {
        serial: c.serial,
        notBefore: new Date(c.notBefore).toISOString(),
        notAfter: new Date(c.notAfter).toISOString(),
        status,
        issuedAt: new Date(c.issuedAt).toISOString(),
        ...(c.revokedAt !== undefined ? { revokedAt: new Date(c.revokedAt).toISOString() } : {}),
      };
    }),
  };
}
