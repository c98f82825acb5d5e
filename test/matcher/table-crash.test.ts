import { describe, expect, it } from 'vitest';
import { createKafka } from '../../services/common/kafka.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { Matcher } from '../../services/matcher/matcher.ts';
import { testCluster, testLogger, waitFor } from '../helpers.ts';

const cluster = testCluster('table-crash');

describe('matcher tables', () => {
  it('tables crash handler: when the rules table consumer crashes for good the matcher is told and stops reporting ready', { timeout: 120_000 }, async () => {
    await prepareCluster(cluster, testLogger);
    const fatal: Error[] = [];
    const matcher = new Matcher(cluster, { groupId: `${cluster.TOPIC_PREFIX}matcher`, httpHost: '127.0.0.1', httpPort: 0, concurrency: 1 }, testLogger, (error) => fatal.push(error));
    await matcher.start();
    try {
      expect(matcher.notReadyReason()).toBeUndefined();
      // A real broker-side failure: the topic the table mirrors disappears, and every fetch and restart fails.
      const admin = createKafka({ brokers: cluster.KAFKA_BROKERS, clientId: 'test-admin', logger: testLogger }).admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topicNames(cluster.TOPIC_PREFIX).eventRules] });
      await admin.disconnect();
      await waitFor('the fatal callback', () => fatal.length > 0, 60_000);
      expect(fatal[0]!.message).toMatch(/topic-partition/);
      expect(matcher.notReadyReason()).toMatch(/rules table stopped following its topic/);
    } finally {
      await matcher.stop();
    }
  });
});
