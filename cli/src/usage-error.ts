import { CommandLineError } from '@tlsfleet/common';

/** A mistake in the command line: printed with the usage, exit status 2. */
export class UsageError extends CommandLineError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
