import { describe, expect, it } from 'vitest';
import { createKafka, kafkaConnection } from '../../services/common/kafka.ts';
import { prepareCluster, removeCluster } from '../../services/common/setup.ts';
import { testCluster, testLogger } from '../helpers.ts';

async function leftovers(prefix: string, cluster: ReturnType<typeof testCluster>): Promise<{ topics: string[]; subjects: string[] }> {
  const admin = createKafka({ ...kafkaConnection(cluster), clientId: 'test-cleanup', logger: testLogger }).admin();
  await admin.connect();
  try {
    const subjects = (await (await fetch(`${cluster.SCHEMA_REGISTRY_URL}/subjects`)).json()) as string[];
    return { topics: (await admin.listTopics()).filter((topic) => topic.startsWith(prefix)), subjects: subjects.filter((subject) => subject.startsWith(prefix)) };
  } finally {
    await admin.disconnect();
  }
}

describe('removeCluster (what tests and benchmarks run after themselves)', () => {
  it("deletes a prefix's topics and schema subjects, and nothing of another prefix", async () => {
    const gone = testCluster('cleanup-gone');
    const kept = testCluster('cleanup-kept');
    const { topics, subjects } = await prepareCluster(gone, testLogger);
    await prepareCluster(kept, testLogger);
    expect(subjects.length).toBeGreaterThan(4);

    const removed = await removeCluster(gone, testLogger);
    expect(removed.topics.sort()).toEqual([...topics].sort());
    expect(removed.subjects.sort()).toEqual([...subjects].sort());
    await expect.poll(() => leftovers(gone.TOPIC_PREFIX, gone)).toEqual({ topics: [], subjects: [] });
    const others = await leftovers(kept.TOPIC_PREFIX, kept);
    expect(others.topics.length).toBe(topics.length);
    expect(others.subjects.length).toBe(subjects.length);
  });

  it('refuses a deployment without a prefix (that would be every topic)', async () => {
    await expect(removeCluster({ ...testCluster('cleanup-none'), TOPIC_PREFIX: '' }, testLogger)).rejects.toThrow(/without TOPIC_PREFIX/);
  });
});
