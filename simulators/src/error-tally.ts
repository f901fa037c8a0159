/**
 * Codes a device reports while the broker it is connected to restarts: the link drops
 * (`network`), the port refuses until the new broker listens (`connection_refused`), and
 * QoS 0 messages find no link (`not_connected`). Expected during a planned restart.
 */
export const RESTART_CODES: ReadonlySet<string> = new Set(['network', 'connection_refused', 'not_connected']);

/** Why errors are expected right now, and which codes that explains. */
export interface Expectation {
  reason: string;
  codes: ReadonlySet<string>;
}

/**
 * Errors by code, split into the unexpected ones and those a planned disruption of the
 * scenario explains (a broker restart), so the output shows the first as errors and the
 * second as what they are.
 */
export class ErrorTally {
  readonly errors: Record<string, number> = {};
  readonly expected: Record<string, number> = {};
  private expectation: Expectation | undefined;
  private lastReason: string | undefined;

  /** From now on, `codes` are expected for `reason`; until `settled()`. */
  expect(reason: string, codes: ReadonlySet<string> = RESTART_CODES): void {
    this.expectation = { reason, codes };
    this.lastReason = reason;
  }

  settled(): void {
    this.expectation = undefined;
  }

  /** Counts `n` errors of `code`; true when they are unexpected. */
  add(code: string, n: number): boolean {
    if (this.expectation?.codes.has(code)) {
      this.expected[code] = (this.expected[code] ?? 0) + n;
      return false;
    }
    this.errors[code] = (this.errors[code] ?? 0) + n;
    return true;
  }

  /** The reason of the last expectation, if any errors were expected. */
  get expectedReason(): string | undefined {
    return Object.keys(this.expected).length > 0 ? this.lastReason : undefined;
  }

  total(which: 'errors' | 'expected'): number {
    return Object.values(this[which]).reduce((a, b) => a + b, 0);
  }
}
