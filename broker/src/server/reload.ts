import { unwatchFile, watchFile } from 'node:fs';
import { constants as cryptoConstants, type X509Certificate } from 'node:crypto';
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import { Acl, caValidityOf, pemX509Certificates, type DataDir } from '@tlsfleet/common';
import type { AclFreshness } from '../acl/acl-freshness.js';
import { loadPolicyFile } from '../acl/policy-file.js';
import { TrustBundleVerifier } from '../ingress/trust-bundle-verifier.js';
import { pollCrlUrl, watchCrlFile } from '../revocation/crl-sources.js';
import { RevocationList } from '../revocation/revocation-list.js';
import { pinnedIssuers, type PinnedIssuers } from '../trust/issuer-pinning.js';
import { TrustAnchors } from '../trust/trust-anchors.js';
import type { BrokerContext } from './broker-context.js';
import type { BrokerMetrics } from './metrics.js';
import type { Settings } from './options.js';
import type { SessionRegistry } from './session-registry.js';
import { markSessionEnd } from '../presence/session-end.js';

/** The options a TLS context is made from; every one, since setSecureContext resets an option it is not given. */
export interface TlsMaterial {
  key: string;
  cert: string;
  ca: string;
  minVersion: 'TLSv1.2';
  secureOptions?: number;
}

/**
 * The trust bundle in force and everything built from one reading of it. ca-bundle.pem is
 * read once per start and per reload, and everything built from that one text: two reads
 * could straddle a rotation's rewrite and pair a TLS context with the other version's pins.
 */
export class TrustMaterial {
  anchors: TrustAnchors;
  bundle: readonly X509Certificate[];
  /** Subject Key Identifiers of the bundle's CAs: the issuers a client certificate may have. */
  issuerKeyIds: ReadonlySet<string>;
  /** The bundle as first read: the CA store of the CRL URL's HTTPS. */
  readonly initialBundlePem: string;
  readonly revocations: RevocationList;
  /** Re-verifies forwarded certificates; only in forwarded-certificate mode. */
  readonly forwardedVerifier: TrustBundleVerifier | undefined;

  constructor(private readonly dataDir: DataDir, private readonly s: Settings, metrics: BrokerMetrics) {
    this.initialBundlePem = dataDir.read('caBundle');
    this.bundle = pemX509Certificates(this.initialBundlePem);
    this.issuerKeyIds = this.pinsOf(this.bundle).keyIds;
    this.anchors = TrustAnchors.of(this.bundle);
    this.revocations = new RevocationList({ issuers: this.bundle, now: s.now });
    metrics.expiry = { cas: () => caValidityOf(this.bundle), crlNextUpdate: () => this.revocations.current?.nextUpdate?.getTime(), now: s.now };
    this.forwardedVerifier = s.forwarded ? new TrustBundleVerifier(this.bundle) : undefined;
    this.warnConstrainedCas();
  }

  /** The TLS context options for `anchors`: the broker's key pair, read now. */
  tlsOptions(anchors: TrustAnchors = this.anchors): TlsMaterial {
    return {
      key: this.dataDir.readSecret('brokerKey'),
      cert: this.dataDir.read('brokerCert'),
      ca: anchors.caPem,
      minVersion: 'TLSv1.2',
      ...(this.s.opts.tlsSessionTickets ? {} : { secureOptions: cryptoConstants.SSL_OP_NO_TICKET }),
    };
  }

  /**
   * Re-reads the bundle and the broker's key pair, hands the new TLS options to `apply`, then
   * puts the new bundle in force. Throws, changing nothing, on a bundle that pins no issuer
   * or on unreadable material.
   */
  reload(apply: (material: TlsMaterial) => void): void {
    const bundle = pemX509Certificates(this.dataDir.read('caBundle'));
    const pins = this.pinsOf(bundle);
    const anchors = TrustAnchors.of(bundle);
    apply(this.tlsOptions(anchors));
    this.anchors = anchors;
    this.bundle = bundle;
    this.revocations.setIssuers(bundle);
    this.forwardedVerifier?.replace(bundle);
    this.warnConstrainedCas();
    this.issuerKeyIds = pins.keyIds;
  }

  /** The bundle's issuer key ids; throws when none is left, since every client would be refused. */
  private pinsOf(bundle: readonly X509Certificate[]): PinnedIssuers {
    const pins = pinnedIssuers(bundle);
    if (pins.keyIds.size === 0) throw new Error(`${this.dataDir.path('caBundle')} holds no CA certificate with a subjectKeyIdentifier: every client certificate would be refused`);
    if (pins.withoutKeyId.length > 0) this.s.logger.warn({ cas: pins.withoutKeyId }, 'trust-bundle CAs without a subjectKeyIdentifier: certificates they issue are refused');
    return pins;
  }

  private warnConstrainedCas(): void {
    const cas = this.forwardedVerifier?.constrainedCas() ?? [];
    if (cas.length > 0) this.s.logger.warn({ cas }, 'forwarded certificates that chain through these CAs are refused: their constraints (other than URI name constraints) or critical extensions are checked on the TLS path only');
  }
}

export interface Reloads {
  /** Re-reads the ACL file (when there is one) and re-judges every subscription; keeps the last good policy on a bad one. */
  acl(): void;
  /** Re-reads the TLS material; keeps the last good on a bad one. */
  tls(): void;
  /** Stops watching the files. */
  unwatch(): void;
}

/**
 * Reloads of the ACL policy and the TLS material, on demand (SIGHUP) and when their files
 * change (polled each second). New handshakes use new TLS material; established sessions
 * keep running unless the CA that issued their certificate left the bundle (a retired
 * intermediate), which `closeIfIssuerUntrusted` decides.
 */
export function watchReloads(deps: {
  s: Settings;
  dataDir: DataDir;
  ctx: BrokerContext;
  trust: TrustMaterial;
  aclFreshness: AclFreshness;
  sessions: SessionRegistry;
  closeIfIssuerUntrusted: (client: Client) => boolean;
  /** Every TLS context to replace: the mqtts and wss listeners'. */
  setSecureContext: (material: TlsMaterial) => void;
}): Reloads {
  const { s, dataDir, ctx, trust } = deps;
  const { logger, metrics } = ctx;
  const aclFile = s.opts.aclFile;
  const acl = () => {
    if (!aclFile) return;
    try {
      ctx.acl = new Acl(loadPolicyFile(aclFile));
      void deps.aclFreshness.rejudge();
      metrics.aclReloads.inc({ result: 'ok' });
      logger.info({ file: aclFile }, 'ACL policy reloaded');
    } catch (err) {
      metrics.aclReloads.inc({ result: 'rejected' });
      logger.error({ file: aclFile, err: (err as Error).message }, 'ACL policy rejected; keeping the last good policy');
    }
  };
  const tls = () => {
    try {
      // The new context has new random ticket keys: a ticket from before the reload cannot
      // resume a session whose chain the new bundle never verified.
      trust.reload(deps.setSecureContext);
      ctx.trustedIssuers = trust.issuerKeyIds;
      logger.info({ issuers: trust.issuerKeyIds.size, anchoredIntermediates: trust.anchors.anchored }, 'TLS material reloaded');
      for (const client of deps.sessions.clients()) deps.closeIfIssuerUntrusted(client);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'TLS material rejected; keeping the last good');
    }
  };
  const watched: string[] = [];
  const watch = (file: string, onChange: () => void) => {
    watched.push(file);
    watchFile(file, { interval: 1000, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size) onChange();
    });
  };
  if (aclFile) watch(aclFile, acl);
  for (const f of ['caBundle', 'brokerCert', 'brokerKey'] as const) watch(dataDir.path(f), tls);
  return {
    acl,
    tls,
    unwatch: () => {
      for (const f of watched) unwatchFile(f);
    },
  };
}

/**
 * The CRL reaching live sessions: each revoked serial's session closes, the CRL's state and
 * number go to the metrics, and the data dir's crl.der (and the CRL URL, when given) are
 * polled. Returns the function that stops the polling.
 */
export function watchRevocations(deps: { s: Settings; dataDir: DataDir; trust: TrustMaterial; sessions: SessionRegistry; metrics: BrokerMetrics; logger: Logger }): () => void {
  const { s, trust, sessions, metrics, logger } = deps;
  const revocations = trust.revocations;
  revocations.on('update', (revoked: ReadonlySet<string>) => {
    metrics.crlNumber.set(Number(revocations.current?.number ?? 0));
    for (const serial of revoked) {
      const client = sessions.bySerialNumber(serial);
      if (!client) continue;
      metrics.revocationDisconnects.inc({ reason: 'revoked' });
      logger.info({ client: client.id, serial }, 'certificate revoked: session closed');
      markSessionEnd(client, 'revoked');
      client.close();
    }
  });
  revocations.on('stale', () => logger.error('the CRL is past its nextUpdate: still enforcing it, but provisioning is not refreshing it (alert)'));
  revocations.on('rejected', (err: Error) => logger.error({ err: err.message }, 'CRL rejected; keeping the last good one'));
  const crlState = () => metrics.crlState.set({ fresh: 0, stale: 1, missing: 2 }[revocations.state()]);
  const crlUrl = s.opts.crlUrl;
  const stops = [
    watchCrlFile(deps.dataDir.path('crl'), revocations, { intervalMs: s.opts.crlIntervalMs ?? 1000, onError: (err) => logger.warn({ err: err.message }, 'CRL file unreadable') }),
    ...(crlUrl
      ? [pollCrlUrl(crlUrl, revocations, { intervalMs: s.opts.crlIntervalMs ?? 2000, ca: trust.initialBundlePem, onError: (err) => logger.warn({ err: err.message }, 'CRL fetch failed') })]
      : []),
  ];
  const timer = setInterval(crlState, 1000).unref();
  return () => {
    for (const stop of stops) stop();
    clearInterval(timer);
  };
}
