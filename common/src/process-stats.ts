import { readFileSync } from 'node:fs';

// What benchmarks and the simulator read about the processes they started, from /proc
// (Linux only): CPU seconds to report rates per server CPU-second, and resident memory.

/** Clock ticks per second of /proc/PID/stat (USER_HZ): 100 on Linux. */
const USER_HZ = 100;

/** User + system CPU seconds a process has used so far, every thread, from /proc/PID/stat (fields 14 and 15). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields after it start past its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/**
 * CPU seconds the hypervisor gave to other guests while this machine's CPUs wanted to run,
 * summed over CPUs: the steal column of /proc/stat's `cpu` line (USER_HZ ticks). 0 outside a VM.
 */
export function machineStealSeconds(): number {
  const stat = readFileSync('/proc/stat', 'utf8');
  const fields = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/);
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  return Number(fields[8] ?? 0) / USER_HZ;
}

/** Resident set size in bytes (VmRSS of /proc/PID/status). */
export function processRssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** The soft limit on open files of a process ("Max open files" of /proc/PID/limits). */
export function openFilesLimit(pid: number | 'self' = 'self'): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

/** CPU seconds a process spends while `run` runs. */
export async function withCpu<T>(pid: number, run: () => Promise<T>): Promise<{ result: T; cpuSeconds: number }> {
  const before = processCpuSeconds(pid);
  const result = await run();
  return { result, cpuSeconds: processCpuSeconds(pid) - before };
}
