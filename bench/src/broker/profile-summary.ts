import { readFileSync } from 'node:fs';

// Self time by function and by origin from a V8 .cpuprofile (node --cpu-prof): what the
// broker spends its CPU on under a benchmark load.

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly name: string;
  readonly ms: number;
  readonly share: number;
}

export interface ProfileSummary {
  /** Sampled time, excluded frames left out. */
  readonly totalMs: number;
  /**
   * Time in excluded frames, by default "(idle)": besides waiting, V8 counts native work
   * that runs with no JavaScript on the stack there, such as TLS handshakes and record
   * crypto driven straight from libuv reads.
   */
  readonly excludedMs: number;
  /** Self time per function (name, file and line), largest first. */
  readonly functions: readonly SelfTime[];
  /** Self time per origin: a package in node_modules, node internals, our packages, V8 pseudo-frames. */
  readonly origins: readonly SelfTime[];
  /** Total (inclusive) time of the functions in our packages (@tlsfleet/*), largest first. */
  readonly oursInclusive: readonly SelfTime[];
}

export function summarizeProfile(file: string, exclude: readonly string[] = ['(idle)']): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);
  const inclusive = new Map<string, number>();
  const functions = new Map<string, number>();
  const origins = new Map<string, number>();
  let totalUs = 0;
  let excludedUs = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id);
    const us = profile.timeDeltas[i] ?? 0;
    if (!frame) return;
    if (exclude.includes(frame.functionName)) {
      excludedUs += us;
      return;
    }
    totalUs += us;
    functions.set(keyOf(frame), (functions.get(keyOf(frame)) ?? 0) + us);
    const onStack = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const f = byId.get(at);
      if (f && originOf(f).startsWith('@tlsfleet/')) onStack.add(keyOf(f));
    }
    for (const key of onStack) inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    const origin = originOf(frame);
    origins.set(origin, (origins.get(origin) ?? 0) + us);
  });
  const list = (m: Map<string, number>) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: us / 1000, share: totalUs ? us / totalUs : 0 }));
  return { totalMs: totalUs / 1000, excludedMs: excludedUs / 1000, functions: list(functions), origins: list(origins), oursInclusive: list(inclusive) };
}

function keyOf(frame: CallFrame): string {
  return frame.url ? `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}` : frame.functionName;
}

function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + '/node_modules/'.length);
  const ours = /\/(common|broker|device-sdk|provisioning)\/dist\/(.*)$/.exec(path);
  return ours ? `${ours[1]}/${ours[2]}` : path;
}

function originOf(frame: CallFrame): string {
  if (!frame.url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (frame.url.startsWith('node:')) return /^node:internal\/([a-z_]+)/.exec(frame.url)?.[0] ?? frame.url;
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(frame.url);
  if (pkg) return pkg[1] as string;
  const ours = /\/(common|broker|device-sdk|provisioning)\/dist\//.exec(frame.url);
  return ours ? `@tlsfleet/${ours[1]}` : frame.url;
}
