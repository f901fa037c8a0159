import { runAgent } from '@tlsfleet/device-sdk/agent';

/** `tlsfleet device enroll|run`: the reference agent, which parses its own flags and prints its own usage. */
export async function deviceCommand(argv: string[]): Promise<number> {
  return runAgent(argv);
}
