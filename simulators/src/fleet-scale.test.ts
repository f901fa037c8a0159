import { describe, expect, it } from 'vitest';
import { fdPlan, loopbackSources } from './fleet-scale.js';

describe('fleet scale planning', () => {
  it('asks for one descriptor per device plus room, and for the broker cap it starts with', () => {
    const plan = fdPlan(50_000, true);
    expect(plan.brokerConnections).toBe(50_064);
    // The broker's default cap is the limit less 10 %: the wanted limit leaves room for the whole fleet.
    expect(plan.want * 0.9).toBeGreaterThan(plan.brokerConnections);
    expect(plan.problems).toEqual([]);
    // The broker's cap under the wanted limit holds the fleet.
    expect(fdPlan(50_000, true, { soft: plan.want, hard: plan.want }).brokerCap).toBeGreaterThanOrEqual(plan.brokerConnections);
    expect(fdPlan(150_000, true, { soft: 200_000, hard: 200_000 }).brokerCap).toBe(150_064);
  });

  it('names what a 20,000 hard limit cannot hold and how many devices fit', () => {
    const plan = fdPlan(50_000, true, { soft: 20_000, hard: 20_000 });
    expect(plan.problems).toEqual(['the simulator needs about 50512 open files', 'the broker it starts inherits the same limit, which holds 18000 connections, not 50064']);
    expect(plan.most).toBe(17_936);
    expect(fdPlan(17_936, true, { soft: 20_000, hard: 20_000 }).problems).toEqual([]);
    // Against someone else's broker only the simulator's own descriptors count.
    expect(fdPlan(19_000, false, { soft: 20_000, hard: 20_000 }).problems).toEqual([]);
    expect(fdPlan(1000, true, { soft: Infinity, hard: Infinity }).problems).toEqual([]);
  });

  it('spreads devices over loopback addresses only when one cannot hold them', () => {
    expect(loopbackSources('mqtts://127.0.0.1:8883', 16_000)).toBeUndefined();
    expect(loopbackSources('mqtts://127.0.0.1:8883', 50_000)).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']);
    expect(loopbackSources('mqtts://localhost:8883', 20_000)).toEqual(['127.0.0.1', '127.0.0.2']);
    expect(loopbackSources('mqtts://broker.example:8883', 50_000)).toBeUndefined();
  });
});
