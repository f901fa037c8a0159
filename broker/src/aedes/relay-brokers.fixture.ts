import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { prepareFixture, type BenchFixture } from '../../../bench/src/broker/bench-fixture.js';
import { startBroker, type RunningBroker } from '../server/start-broker.js';

/** Two brokers in this process on one data dir: one relaying (the default), one on Aedes' path only. */
export interface RelayBrokers {
  readonly fixture: BenchFixture;
  readonly relaying: RunningBroker;
  readonly aedesOnly: RunningBroker;
  /** Client sockets the tests opened, destroyed at close. */
  readonly sockets: TLSSocket[];
  close(): Promise<void>;
}

/** `now` is the relaying broker's clock (a test may move it); four devices and the service `ingest`. */
export async function startRelayBrokers(name: string, now: () => number = Date.now): Promise<RelayBrokers> {
  const work = mkdtempSync(join(tmpdir(), `tlsfleet-${name}-`));
  const fixture = prepareFixture(work, 4, 'ingest');
  const logger = pino({ level: 'silent' });
  const relaying = await startBroker({ dataDir: fixture.dataDir, host: '127.0.0.1', port: 0, logger, now });
  const aedesOnly = await startBroker({ dataDir: fixture.dataDir, host: '127.0.0.1', port: 0, logger, publishRelay: false });
  const sockets: TLSSocket[] = [];
  return {
    fixture,
    relaying,
    aedesOnly,
    sockets,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([relaying.close(1000), aedesOnly.close(1000)]);
      rmSync(work, { recursive: true, force: true });
    },
  };
}
