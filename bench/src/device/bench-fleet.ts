import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runToCompletion, spawnTracked, type Tracked } from './tracked-processes.js';

/** The checkout's root, from bench/dist/device/. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(REPO_ROOT, 'cli/bin/tlsfleet.js');

const READY_MS = 30_000;

/** A data dir with provisioning and a broker serving it, both on 127.0.0.1 at free ports. */
export interface BenchFleet {
  dataDir: string;
  caFile: string;
  provisioningUrl: string;
  brokerUrl: string;
  /** A one-time device token from POST /v1/tokens with the admin token. */
  mintToken(deviceId: string): Promise<string>;
}

export async function startBenchFleet(workDir: string): Promise<BenchFleet> {
  const dataDir = join(workDir, 'data');
  runToCompletion(process.execPath, [CLI, 'init', '--data-dir', dataDir], { timeoutMs: READY_MS });
  const caFile = join(dataDir, 'ca-bundle.pem');
  const ca = readFileSync(caFile, 'utf8');
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const provisioning = spawnTracked(process.execPath, [CLI, 'provisioning', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0']);
  const broker = spawnTracked(process.execPath, [CLI, 'broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--health-port', '0']);
  const [provisioningUrl, brokerUrl] = await Promise.all([readyUrl(provisioning, /"url":"(https:\/\/[^"]+)".*"msg":"provisioning listening"/), readyUrl(broker, /"url":"(mqtts:\/\/[^"]+)".*"msg":"broker listening"/)]);
  return {
    dataDir,
    caFile,
    provisioningUrl,
    brokerUrl,
    mintToken: (deviceId) => postToken(provisioningUrl, ca, adminToken, deviceId),
  };
}

async function readyUrl(service: Tracked, ready: RegExp): Promise<string> {
  const { value } = await service.line('its listening line', (l) => ready.exec(l)?.[1], READY_MS);
  return value;
}

function postToken(provisioningUrl: string, ca: string, adminToken: string, deviceId: string): Promise<string> {
  const body = JSON.stringify({ deviceId });
  return new Promise((resolve, reject) => {
    const req = request(
      `${provisioningUrl}/v1/tokens`,
      { method: 'POST', ca, agent: false, timeout: READY_MS, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => (res.statusCode === 201 ? resolve((JSON.parse(text) as { token: string }).token) : reject(new Error(`POST /v1/tokens: ${res.statusCode} ${text}`))));
      },
    );
    req.on('timeout', () => req.destroy(new Error('POST /v1/tokens timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
