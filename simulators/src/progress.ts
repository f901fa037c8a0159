export interface ProgressFigures {
  enrolled: number;
  connected: number;
  sent: number;
  received: number;
  errors: number;
}

/** On a TTY a live line rewritten in place; otherwise one plain line every 5 s. */
export class Progress {
  private readonly tty: boolean;
  private lastPlain = 0;
  private readonly t0 = Date.now();

  constructor(
    private readonly out: NodeJS.WriteStream | NodeJS.WritableStream,
    private readonly devices: number,
  ) {
    this.tty = (out as NodeJS.WriteStream).isTTY === true;
  }

  update(f: ProgressFigures): void {
    const elapsed = Math.round((Date.now() - this.t0) / 1000);
    const line = `${elapsed}s enrolled ${f.enrolled}/${this.devices} connected ${f.connected}/${this.devices} messages sent ${f.sent} received ${f.received} errors ${f.errors}`;
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
