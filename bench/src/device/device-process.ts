import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { processRssBytes } from '@tlsfleet/common';
import { spawnTracked } from './tracked-processes.js';

/** A way to run a connected device process: the argv after `node`, given the state dir and broker URL. */
export interface DeviceProgram {
  name: string;
  argv(stateDir: string, brokerUrl: string): string[];
}

export interface DeviceRun {
  /** Parent's clock: spawn → the `connected` line read from the child's stdout, ms. */
  spawnToConnectedMs: number;
  /** Child's own `afterMs`: from where it starts connecting (after loading its code) to connected, ms. */
  afterMs: number;
  /** VmRSS after idling connected, bytes. */
  rssBytes: number;
}

const CONNECT_WITHIN_MS = 20_000;

/**
 * Starts one device process, waits for its `connected` JSON line, lets it sit idle for
 * `idleMs` (no publishing: the agent's heartbeat is 30 s), reads its RSS, and stops it.
 */
export async function measureDeviceProcess(program: DeviceProgram, stateDir: string, brokerUrl: string, idleMs: number): Promise<DeviceRun> {
  const argv = program.argv(stateDir, brokerUrl);
  // cwd beside the program: the bundle must not lean on a node_modules near the caller's cwd.
  const device = spawnTracked(process.execPath, argv, { cwd: dirname(argv[0]!) });
  try {
    const { value, atMs } = await device.line('a connected line', (l) => connectedLine(l), CONNECT_WITHIN_MS);
    await delay(idleMs);
    if (device.child.exitCode !== null) throw new Error(`${program.name} exited while idle:\n${device.output()}`);
    const rssBytes = processRssBytes(device.pid);
    const errors = device.output().split('\n').filter((l) => l.includes('"event":"error"'));
    if (errors.length > 0) throw new Error(`${program.name} reported errors:\n${errors.join('\n')}`);
    return { spawnToConnectedMs: atMs - device.startedAtMs, afterMs: value.afterMs, rssBytes };
  } finally {
    await device.stop();
  }
}

/** The floor under every figure above: spawn → first line of a Node process that loads nothing, ms. */
export async function measureNodeStartup(): Promise<number> {
  const node = spawnTracked(process.execPath, ['-e', 'console.log("ready")']);
  try {
    const { atMs } = await node.line('its line', (l) => (l === 'ready' ? true : undefined), CONNECT_WITHIN_MS);
    return atMs - node.startedAtMs;
  } finally {
    await node.stop();
  }
}

function connectedLine(line: string): { afterMs: number } | undefined {
  if (!line.startsWith('{')) return undefined;
  const parsed = JSON.parse(line) as { event?: string; afterMs?: number };
  return parsed.event === 'connected' && typeof parsed.afterMs === 'number' ? { afterMs: parsed.afterMs } : undefined;
}
