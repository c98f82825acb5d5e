import { describe, expect, it } from 'vitest';
import { baseSettings, ConfigError, loadConfig } from '../../services/common/config.ts';
import { dispatcherSettings } from '../../services/dispatcher/main.ts';

describe('configuration', () => {
  it('has working defaults', () => {
    expect(loadConfig({ ...baseSettings, ...dispatcherSettings }, {})).toMatchObject({
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      RETRY_SCHEDULE: [5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
      DISPATCHER_ATTEMPT_TIMEOUT: 15_000,
      DISPATCHER_ALLOW_NETWORKS: [],
    });
  });

  it('names every bad variable and says what it must be', () => {
    const load = () => loadConfig({ ...baseSettings, ...dispatcherSettings }, {
      KAFKA_BROKERS: 'localhost',
      RETRY_SCHEDULE: '5s,soon',
      DISPATCHER_ATTEMPT_TIMEOUT: '10s,20s',
      DISPATCHER_MAX_IN_FLIGHT: '-3',
      LOG_LEVEL: 'loud',
    });
    expect(load).toThrow(ConfigError);
    const message = (() => { try { load(); } catch (error) { return (error as Error).message; } return ''; })();
    expect(message).toContain('KAFKA_BROKERS.0: each broker must be host:port');
    expect(message).toContain('RETRY_SCHEDULE: "soon" is not a duration');
    expect(message).toContain('DISPATCHER_ATTEMPT_TIMEOUT: one duration, not a list');
    expect(message).toMatch(/DISPATCHER_MAX_IN_FLIGHT: .*>=1/);
    expect(message).toMatch(/LOG_LEVEL: /);
  });
});
