import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../cli/bin/tlsfleet.js', import.meta.url));

export interface CliResult {
  /** Its process id, which names its temp files (common/src/atomic-file.ts). */
  pid: number | undefined;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tlsfleet ...args` to completion. */
export async function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  return { pid: child.pid, code, stdout, stderr };
}

export interface Service {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  /** Everything it printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Its stdout alone so far: JSON log lines for the server commands. */
  stdout(): string;
  /** SIGTERM, then resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** What a started command must print to be ready: a regular expression (its first capture group is the answer), or a reader of everything printed so far. */
export type Ready = RegExp | ReadFromOutput;
export type ReadFromOutput = (output: string) => string | undefined;

/** The JSON log lines (pino) in `output` whose `msg` is `msg`, parsed; other lines skipped. */
export function logLines(output: string, msg: string): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.includes(`"msg":${JSON.stringify(msg)}`)) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.msg === msg) found.push(parsed);
    } catch {
      // A line still being written.
    }
  }
  return found;
}

/** Ready once a JSON log line `msg` appears; answers its `field` (a server's `url`). */
export function logged(msg: string, field = 'url'): ReadFromOutput {
  return (output) => {
    const value = logLines(output, msg)[0]?.[field];
    return value === undefined ? undefined : String(value);
  };
}

/** `field` of the first `msg` log line a service printed; throws when absent. */
export function loggedField(service: { output(): string }, msg: string, field: string): string {
  const value = logged(msg, field)(service.output());
  if (value === undefined) throw new Error(`no ${field} in a "${msg}" log line:\n${service.output()}`);
  return value;
}

/**
 * Starts a long-running `tlsfleet` command and resolves once what it printed satisfies
 * `ready` (see Ready). Rejects if it exits first.
 */
export async function startService(args: string[], ready: Ready, opts: { cwd?: string; env?: NodeJS.ProcessEnv; prefix?: string[] } = {}): Promise<Service> {
  // `prefix`: a command that runs the CLI, e.g. ['prlimit', '--nofile=300:300'].
  const [command, ...prefixArgs] = [...(opts.prefix ?? []), process.execPath];
  const child = spawn(command!, [...prefixArgs, CLI, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, TLSFLEET_LOG_LEVEL: 'debug', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: string) => {
      out += d;
      stdout += d;
      if (typeof ready === 'function') {
        const answer = ready(out);
        if (answer !== undefined) resolve(answer);
        return;
      }
      const m = ready.exec(out);
      if (m) resolve(m[1] ?? m[0]);
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    void exited.then(([code]) => reject(new Error(`tlsfleet ${args[0]} exited with ${code} before it was ready:\n${out}`)));
  });
  return {
    child,
    url,
    // `ready` may capture something other than a URL (the device agent's serial).
    port: URL.canParse(url) ? Number(new URL(url).port) : NaN,
    output: () => out,
    stdout: () => stdout,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
  };
}

/** `tlsfleet provisioning` on a free loopback port. */
export function startProvisioningProcess(dataDir: string, extra: string[] = []): Promise<Service> {
  return startService(['provisioning', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', ...extra], logged('provisioning listening'));
}
