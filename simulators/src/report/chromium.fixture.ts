import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';

/** How long one headless chromium may take to load a report and print its DOM (it takes about 1.5 s). */
export const CHROMIUM_TIMEOUT_MS = 30_000;

/** Loads `htmlFile` in headless Debian chromium and answers the DOM as it stands after the page's script ran. */
export async function dumpDom(htmlFile: string, profileDir: string): Promise<string> {
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];
  args.push(`--user-data-dir=${profileDir}`, '--dump-dom', pathToFileURL(htmlFile).href);
  // Its own process group, so that a hung browser is ended together with its helper processes;
  // HOME in the profile, so it writes nothing into the real home directory.
  const browser = spawn('chromium', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: profileDir } });
  const stdout: Buffer[] = [];
  let stderrTail = '';
  browser.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  browser.stderr.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-4000);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-browser.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }, CHROMIUM_TIMEOUT_MS);
  try {
    const [code, signal] = (await once(browser, 'close')) as [number | null, NodeJS.Signals | null];
    if (timedOut) throw new Error(`chromium did not print the DOM within ${CHROMIUM_TIMEOUT_MS} ms:\n${stderrTail}`);
    if (code !== 0) throw new Error(`chromium exited with ${code ?? signal}:\n${stderrTail}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('chromium is not installed: run node scripts/install-peers.mjs');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(stdout).toString('utf8');
}

/** The chart figure `name` in a serialized DOM: its attributes and what the script drew into it. */
export function chartIn(serializedDom: string, name: string): { attributes: Record<string, string>; content: string } {
  const figure = new RegExp(`<figure([^>]*\\sdata-chart="${name}"[^>]*)>([\\s\\S]*?)</figure>`).exec(serializedDom);
  if (!figure) throw new Error(`no chart ${name} in the DOM`);
  const attributes = Object.fromEntries([...figure[1]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]));
  return { attributes, content: figure[2]! };
}

