import { createLogger, startProvisioning } from '@tlsfleet/provisioning';

// The provisioning service in a process of its own, so the benchmark can read its CPU time.
// Usage: node serve.js DATA_DIR
const running = await startProvisioning({
  dataDir: process.argv[2] as string,
  port: 0,
  // One load generator on one address: per-client bounds off, as --client-rate 0 --max-inflight-per-client 0.
  gate: { maxInFlight: 1024, perClientRate: 0, maxInFlightPerClient: 0 },
  logger: createLogger('bench', 'warn'),
});
process.stdout.write(`listening ${running.url}\n`);
process.once('SIGTERM', () => void running.close().then(() => process.exit(0)));
