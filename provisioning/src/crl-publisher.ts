import { readFile, stat } from 'node:fs/promises';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Crl } from './authority/authority.js';
import type { Logger } from './logger.js';
import { writeFileAtomic } from '@tlsfleet/common';

export interface CrlPublisherOptions {
  /** Source of the current CRL; `Authority.crl()` re-issues after any process's revocation and before nextUpdate. */
  authority: { crl(): Promise<Crl> };
  /** The file kept current, normally the data dir's `crl.der`. */
  path: string;
  logger: Logger;
}

const ID_CE_CRL_NUMBER = '2.5.29.20';

/**
 * Keeps a DER CRL file current for readers on the same host (the broker's file source).
 * The file is replaced atomically, mode 0644, and only when it holds an older CRL than the
 * authority's: the CLI and the service may both publish into one data dir, and CRL numbers
 * come from the shared store, so "higher number wins" converges whoever renames last.
 */
export class CrlPublisher {
  private readonly authority: CrlPublisherOptions['authority'];
  private readonly path: string;
  private readonly logger: Logger;
  /** What this publisher last saw in the file, to skip re-reading it while it is unchanged. */
  private known: { number: bigint; stamp: string } | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(opts: CrlPublisherOptions) {
    this.authority = opts.authority;
    this.path = opts.path;
    this.logger = opts.logger;
  }

  /**
   * Writes the current CRL unless the file already holds it (or a newer one). One write at
   * a time: a call made while one runs is coalesced into a single follow-up run, which
   * still sees every revocation recorded before the call. Rejects when writing fails.
   */
  publish(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) return this.run();
    this.queued = this.running.catch(() => undefined).then(() => {
      this.queued = undefined;
      return this.run();
    });
    return this.queued;
  }

  /** Publishes every `intervalMs` (default 1 s) on an unref'd timer; failures are logged, never thrown. */
  start(intervalMs = 1000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer; resolves once a publish in progress has settled. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await (this.queued ?? this.running)?.catch(() => undefined);
  }

  private run(): Promise<void> {
    const run = this.publishOnce().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async tick(): Promise<void> {
    try {
      await this.publish();
      if (this.failing) this.logger.info({ path: this.path }, 'CRL file published again');
      this.failing = false;
    } catch (err) {
      // Once per outage at error level, so a read-only data dir does not log every second.
      if (this.failing) this.logger.debug({ err, path: this.path }, 'still cannot publish the CRL file');
      else this.logger.error({ err, path: this.path }, 'cannot publish the CRL file');
      this.failing = true;
    }
  }

  private async publishOnce(): Promise<void> {
    const crl = await this.authority.crl();
    const onDisk = await this.fileNumber();
    if (onDisk !== undefined && onDisk >= crl.number) return;
    await writeFileAtomic(this.path, crl.der, 0o644);
    this.known = { number: crl.number, stamp: await stampOf(this.path) };
    this.logger.info({ path: this.path, crlNumber: crl.number.toString(), nextUpdate: crl.nextUpdate.toISOString() }, 'CRL file published');
  }

  /** cRLNumber of the file now on disk; undefined when absent or unreadable (then it is rewritten). */
  private async fileNumber(): Promise<bigint | undefined> {
    const stamp = await stampOf(this.path);
    if (stamp === 'absent') return undefined;
    if (this.known?.stamp === stamp) return this.known.number;
    const number = publishedCrlNumber(await readFile(this.path).catch(() => Buffer.alloc(0)));
    this.known = number === undefined ? undefined : { number, stamp };
    return number;
  }
}

/** Identity of a file's current content: a rename changes the inode even within one mtime tick. */
async function stampOf(path: string): Promise<string> {
  const s = await stat(path, { bigint: true }).catch(() => undefined);
  return s === undefined ? 'absent' : `${s.ino}:${s.size}:${s.mtimeNs}`;
}

/** The cRLNumber of a DER CRL (RFC 5280 §5.2.3); undefined when it has none or does not parse. */
export function publishedCrlNumber(der: Buffer): bigint | undefined {
  try {
    const crl = pkijs.CertificateRevocationList.fromBER(der);
    // RFC 5280 §5.2.3: cRLNumber, a non-critical INTEGER extension.
    const ext = crl.crlExtensions?.extensions.find((e) => e.extnID === ID_CE_CRL_NUMBER);
    const value: unknown = ext?.parsedValue;
    return value instanceof asn1js.Integer ? value.toBigInt() : undefined;
  } catch {
    return undefined;
  }
}
