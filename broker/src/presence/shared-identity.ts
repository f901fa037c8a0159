/**
 * Spots one identity used from two places at once: a session accepted from one address
 * while the identity's previous session, from another address, was still open (a takeover)
 * or ended less than `windowMs` before. Two devices holding one certificate (cloned, or
 * shared by mistake) keep taking each other's session over, which looks exactly like this;
 * AWS IoT Device Defender calls it DEVICE_CERTIFICATE_SHARED. A device that changes
 * networks (Wi-Fi to cellular) can trip it once: it is a finding for an operator, not a
 * refusal. Per broker instance: sessions held by other instances of a cluster are not seen.
 */
export class SharedIdentityWatch {
  /** Identity → where and when its last session ended, for sessions ended within the window. */
  private readonly ended = new Map<string, { address: string; at: number }>();
  /** Identity → when it was last seen from two addresses, kept for `rememberMs`. */
  private readonly flagged = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly now: () => number,
    private readonly onShared: (finding: { id: string; address: string; previousAddress: string }) => void,
    private readonly windowMs = 60_000,
    private readonly rememberMs = 3_600_000,
  ) {
    this.timer = setInterval(() => this.prune(), Math.min(windowMs, 60_000));
    this.timer.unref();
  }

  /** A session of `id` ended; `address` is where it came from. */
  sessionEnded(id: string, address: string | undefined): void {
    if (address !== undefined) this.ended.set(id, { address, at: this.now() });
  }

  /** A session of `id` was accepted from `address` (after the end of any session it took over). */
  sessionStarted(id: string, address: string | undefined): void {
    const previous = this.ended.get(id);
    if (address === undefined || previous === undefined) return;
    if (previous.address === address || this.now() - previous.at > this.windowMs) return;
    this.flagged.set(id, this.now());
    this.onShared({ id, address, previousAddress: previous.address });
  }

  /** Identities seen from two addresses within the window, in the last `rememberMs`. */
  sharedCount(): number {
    this.prune();
    return this.flagged.size;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private prune(): void {
    const now = this.now();
    for (const [id, { at }] of this.ended) if (now - at > this.windowMs) this.ended.delete(id);
    for (const [id, at] of this.flagged) if (now - at > this.rememberMs) this.flagged.delete(id);
  }
}
