import { parentPort, workerData } from 'node:worker_threads';
import { FleetShard, type ShardConfig, type ShardDevice } from './fleet-shard.js';

// A worker thread runs one shard; the main thread collects its reports.
const { config, devices, reportEveryMs } = workerData as { config: ShardConfig; devices: ShardDevice[]; reportEveryMs: number };
const shard = new FleetShard(config, devices);
const port = parentPort!;
const timer = setInterval(() => port.postMessage(shard.takeReport()), reportEveryMs);
port.on('message', (msg: { type: 'stop' }) => {
  if (msg.type !== 'stop') return;
  void shard.stop().then((done) => {
    clearInterval(timer);
    port.postMessage(shard.takeReport());
    port.postMessage(done);
    port.close();
  });
});
void shard.start();
