export interface ProgressFigures {
  enrolled: number;
  connected: number;
  /** Handed to the MQTT client, as of the workers' last report (every 250 ms). */
  sent: number;
  /** Unique messages the checker saw, counted the moment they arrive. */
  received: number;
  /** Seen again by the checker (QoS 1 redeliveries after a lost PUBACK); not in `received`. */
  duplicated: number;
  /** Unexpected errors. */
  errors: number;
  /** Errors a planned disruption of the scenario explains (a broker restart). */
  expected: number;
  expectedReason?: string;
}

/** Said once, before the first line: what the counters mean. */
export const PROGRESS_LEGEND =
  'sent: handed to the MQTT client, reported by the workers every 250 ms; received: unique messages seen by the checker as they arrive, ' +
  'so received may lead sent by the last 250 ms of traffic; duplicates (QoS 1 redeliveries) are counted apart, never in received';

/** On a TTY a live line rewritten in place; otherwise one plain line every 5 s. */
export class Progress {
  private readonly tty: boolean;
  private lastPlain = 0;
  private legendShown = false;
  private readonly t0 = Date.now();

  constructor(
    private readonly out: NodeJS.WriteStream | NodeJS.WritableStream,
    private readonly devices: number,
  ) {
    this.tty = (out as NodeJS.WriteStream).isTTY === true;
  }

  update(f: ProgressFigures): void {
    const elapsed = Math.round((Date.now() - this.t0) / 1000);
    const line = `${elapsed}s ${progressLine(f, this.devices)}`;
    if (!this.legendShown) {
      this.legendShown = true;
      this.out.write(`(${PROGRESS_LEGEND})\n`);
    }
    if (this.tty) {
      this.out.write(`\r\x1b[2K${line}`);
    } else if (Date.now() - this.lastPlain >= 5000) {
      this.lastPlain = Date.now();
      this.out.write(line + '\n');
    }
  }

  finish(): void {
    if (this.tty) this.out.write('\n');
  }
}

/** One progress line without the elapsed time. */
export function progressLine(f: ProgressFigures, devices: number): string {
  const parts = [`enrolled ${f.enrolled}/${devices}`, `connected ${f.connected}/${devices}`, `messages sent ${f.sent} received ${f.received}`];
  if (f.received > f.sent) parts.push('(received leads: sends are reported every 250 ms)');
  if (f.duplicated > 0) parts.push(`duplicates ${f.duplicated}`);
  parts.push(`errors ${f.errors}`);
  if (f.expected > 0) parts.push(`${f.expectedReason ?? 'expected'} ${f.expected}`);
  return parts.join(' ');
}
