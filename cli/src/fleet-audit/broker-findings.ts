import { get } from 'node:http';

/** What one broker's /metrics says about the fleet (docs/reference/metrics.md). */
export interface BrokerFindings {
  url: string;
  /** Live sessions whose certificate is revoked or expired: must be 0. */
  revokedSessions?: number;
  /** Identities seen from two addresses within a minute, in the last hour. */
  sharedIdentities?: number;
  /** The number of the CRL the broker enforces. */
  crlNumber?: string;
  /** Why the broker could not be read. */
  error?: string;
}

const TIMEOUT_MS = 5_000;
/** A broker's metrics are tens of KiB; anything past this is not one. */
const MAX_BYTES = 4 * 1024 * 1024;

/** Reads the broker's metrics at `url` (plain HTTP, the health port), bounded in time and size. */
export async function readBrokerFindings(url: string): Promise<BrokerFindings> {
  try {
    const text = await fetchText(url);
    const value = (name: string) => metricValue(text, name);
    const crl = value('tlsfleet_broker_crl_number');
    return { url, revokedSessions: Number(value('tlsfleet_broker_revoked_sessions') ?? NaN), sharedIdentities: Number(value('tlsfleet_broker_shared_identities') ?? NaN), ...(crl === undefined ? {} : { crlNumber: crl }) };
  } catch (err) {
    return { url, error: (err as Error).message };
  }
}

/** The value of an unlabelled sample `name` in Prometheus text, as written. */
export function metricValue(text: string, name: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return line.slice(name.length + 1).trim().split(' ')[0];
  }
  return undefined;
}

function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!URL.canParse(url) || new URL(url).protocol !== 'http:') return reject(new Error('not an http:// URL (the broker health port serves plain HTTP)'));
    const req = get(url, { timeout: TIMEOUT_MS }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`answered ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BYTES) req.destroy(new Error(`answer larger than ${MAX_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });
}
