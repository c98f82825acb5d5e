/**
 * The short form of `npm run chaos`: kill -9 of the matcher and the dispatcher (twice each) and a broker restart
 * while events flow, on a private stack of its own (the broker restart must not disturb the other test files).
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../../bench/chaos/run.ts';

describe('chaos', () => {
  it('kill -9 of both services and a broker restart mid-run lose no (event, rule) pair; duplicates keep their webhook-id', { timeout: 300_000 }, async () => {
    const lines: string[] = [];
    const { serviceOutput, ...result } = await runChaos({ events: 2000, rules: 3, kills: 2, brokerRestarts: 1, publishMs: 30_000, drainTimeoutMs: 90_000 }, (line) => lines.push(line));
    const report = `${lines.join('\n')}\n${JSON.stringify(result, null, 2)}\nmatcher output:\n${serviceOutput.matcher}\ndispatcher output:\n${serviceOutput.dispatcher}`;

    expect(result.lost, report).toBe(0);
    expect(result.deliveredPairs, report).toBe(6000);
    expect(result.webhookIdMismatches, report).toBe(0);
    expect(result.badSignatures, report).toBe(0);
    expect(result.unexpectedPosts, report).toBe(0);
    expect({ kills: result.kills, brokerRestarts: result.brokerRestarts }).toEqual({ kills: { matcher: 2, dispatcher: 2 }, brokerRestarts: 1 });
    // Every strike fell once deliveries flowed, and each target was struck at least once with pairs still to deliver
    // (a late strike, pushed past the publishing window by the restart before it, may find all of them delivered).
    for (const strike of result.strikes) expect(strike.deliveredPairs, `${strike.target} at ${strike.atMs} ms`).toBeGreaterThan(0);
    for (const target of ['matcher', 'dispatcher', 'broker']) {
      const midRun = result.strikes.filter((strike) => strike.target === target && strike.deliveredPairs < result.expectedPairs);
      expect(midRun.length, `${target} struck mid-run`).toBeGreaterThan(0);
    }
  });
});
