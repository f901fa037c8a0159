import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionBudget } from './connection-budget.js';

/** Resolves once `done` holds, re-checked each turn of the event loop (the server's accept and close). */
function until(done: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (done() ? resolve() : setImmediate(check));
    check();
  });
}

describe('ConnectionBudget', () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  async function listening(budget: ConnectionBudget, listener: 'mqtts' | 'wss'): Promise<number> {
    // Reading, so that a client's close is seen and the budget freed.
    const server = createServer((socket) => socket.on('error', () => undefined).resume());
    servers.push(server);
    budget.watch(server, listener);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }
  async function open(port: number): Promise<Socket> {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    sockets.push(s);
    await once(s, 'connect');
    return s;
  }

  it('caps two listeners together, closes the connection past the cap, and frees a place when one closes', async () => {
    const refused: string[] = [];
    const budget = new ConnectionBudget(2, (listener) => refused.push(listener));
    const [a, b] = [await listening(budget, 'mqtts'), await listening(budget, 'wss')];
    await open(a);
    const second = await open(b);
    const third = await open(a);
    third.resume();
    await once(third, 'close');
    expect(refused).toEqual(['mqtts']);
    expect(budget.inUse).toBe(2);
    second.destroy();
    await until(() => budget.inUse === 1);
    await open(b);
    await until(() => budget.inUse === 2);
    expect(refused).toEqual(['mqtts']);
  });

  it('reports a flood of refusals once a second, with how many there were', async () => {
    let now = 0;
    const reports: number[] = [];
    const budget = new ConnectionBudget(1, () => undefined, (n) => reports.push(n), () => now);
    const port = await listening(budget, 'mqtts');
    await open(port);
    for (const at of [1000, 1200, 1500, 2100]) {
      now = at;
      const s = await open(port);
      s.resume();
      await once(s, 'close');
    }
    expect(reports).toEqual([1, 3]);
  });
});
