import { describe, expect, it } from 'vitest';
import { assignedPartitions, OffsetCommitter } from '../../services/common/offset-committer.ts';
import { createLogger } from '../../services/common/logger.ts';

type Offsets = Array<{ topic: string; partition: number; offset: string }>;

/** A consumer whose commits are recorded and stay in flight until the test settles them. */
function stubConsumer() {
  const commits: Array<{ offsets: Offsets; settle: (error?: Error) => void }> = [];
  const consumer = {
    commitOffsets: (offsets: Offsets) => new Promise<void>((resolve, reject) => {
      commits.push({ offsets, settle: (error) => (error ? reject(error) : resolve()) });
    }),
  };
  return { consumer, commits };
}

const logger = createLogger('test', 'silent');
const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

describe('offset committer', () => {
  it('commits the latest offset of each partition once per flush, nothing when nothing changed', async () => {
    const { consumer, commits } = stubConsumer();
    const committer = new OffsetCommitter(consumer, logger);
    committer.set('events', 0, '5');
    committer.set('events', 0, '9');
    committer.set('events', 1, '3');
    const flushed = committer.flush();
    await until(() => commits.length === 1);
    expect(commits[0]!.offsets).toEqual([{ topic: 'events', partition: 0, offset: '9' }, { topic: 'events', partition: 1, offset: '3' }]);
    commits[0]!.settle();
    await flushed;
    await committer.flush();
    expect(commits).toHaveLength(1);
  });

  it('never overlaps commits: the next waits for the one in flight', async () => {
    const { consumer, commits } = stubConsumer();
    const committer = new OffsetCommitter(consumer, logger);
    committer.set('events', 0, '1');
    const first = committer.flush();
    await until(() => commits.length === 1);
    committer.set('events', 0, '2');
    const second = committer.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(commits).toHaveLength(1);
    commits[0]!.settle();
    await first;
    await until(() => commits.length === 2);
    expect(commits[1]!.offsets).toEqual([{ topic: 'events', partition: 0, offset: '2' }]);
    commits[1]!.settle();
    await second;
  });

  it('drops the offsets of partitions lost in a rebalance, keeps the others', async () => {
    const { consumer, commits } = stubConsumer();
    const committer = new OffsetCommitter(consumer, logger);
    committer.set('events', 0, '7');
    committer.set('events', 1, '8');
    committer.retain(assignedPartitions({ events: [1, 2] }));
    const flushed = committer.flush();
    await until(() => commits.length === 1);
    expect(commits[0]!.offsets).toEqual([{ topic: 'events', partition: 1, offset: '8' }]);
    commits[0]!.settle();
    await flushed;
  });

  it('retries a failed commit at the next flush (issue 24, item 6: failed offset commits are dropped)', async () => {
    const { consumer, commits } = stubConsumer();
    const committer = new OffsetCommitter(consumer, logger);
    committer.set('events', 0, '4');
    const failed = committer.flush();
    await until(() => commits.length === 1);
    commits[0]!.settle(new Error('REBALANCE_IN_PROGRESS'));
    await expect(failed).resolves.toBeUndefined();
    const retried = committer.flush();
    await until(() => commits.length === 2);
    expect(commits[1]!.offsets).toEqual([{ topic: 'events', partition: 0, offset: '4' }]);
    commits[1]!.settle();
    await retried;
    await committer.flush();
    expect(commits).toHaveLength(2);
  });

  it('retries on its timer, not in a loop, and a newer offset set meanwhile wins over the failed one', async () => {
    const { consumer, commits } = stubConsumer();
    const committer = new OffsetCommitter(consumer, logger, 30);
    committer.start();
    committer.set('events', 0, '4');
    committer.set('events', 1, '2');
    await until(() => commits.length === 1);
    committer.set('events', 0, '6');
    const failedAt = Date.now();
    commits[0]!.settle(new Error('NOT_COORDINATOR'));
    await until(() => commits.length === 2);
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(10);
    expect(commits[1]!.offsets).toEqual([{ topic: 'events', partition: 0, offset: '6' }, { topic: 'events', partition: 1, offset: '2' }]);
    commits[1]!.settle();
    await committer.stop();
  });

  it('does not re-commit the failed offset of a partition revoked while the commit was in flight', async () => {
    const { consumer, commits } = stubConsumer();
    const committer = new OffsetCommitter(consumer, logger);
    committer.set('events', 0, '7');
    committer.set('events', 1, '8');
    const failed = committer.flush();
    await until(() => commits.length === 1);
    committer.retain(assignedPartitions({ events: [1] }));
    commits[0]!.settle(new Error('REBALANCE_IN_PROGRESS'));
    await failed;
    const retried = committer.flush();
    await until(() => commits.length === 2);
    expect(commits[1]!.offsets).toEqual([{ topic: 'events', partition: 1, offset: '8' }]);
    commits[1]!.settle();
    await retried;
  });

  it('stop() tries the final commit again a bounded number of times', async () => {
    const attempts = (failures: number) => {
      const calls: Offsets[] = [];
      const consumer = { commitOffsets: async (offsets: Offsets) => { calls.push(offsets); if (calls.length <= failures) throw new Error('NOT_COORDINATOR'); } };
      return { consumer, calls };
    };
    const once = attempts(1);
    const recovering = new OffsetCommitter(once.consumer, logger, 5);
    recovering.set('events', 0, '9');
    await recovering.stop();
    expect(once.calls).toEqual([[{ topic: 'events', partition: 0, offset: '9' }], [{ topic: 'events', partition: 0, offset: '9' }]]);

    const never = attempts(Infinity);
    const failing = new OffsetCommitter(never.consumer, logger, 5);
    failing.set('events', 0, '9');
    await failing.stop();
    expect(never.calls).toHaveLength(3);
  });

  it('commits on its timer once started, and what is left when stopped', async () => {
    const { consumer, commits } = stubConsumer();
    const committer = new OffsetCommitter(consumer, logger, 10);
    committer.start();
    committer.set('events', 0, '1');
    await until(() => commits.length === 1);
    commits[0]!.settle();
    committer.set('events', 0, '2');
    const stopped = committer.stop();
    await until(() => commits.length === 2);
    expect(commits[1]!.offsets).toEqual([{ topic: 'events', partition: 0, offset: '2' }]);
    commits[1]!.settle();
    await stopped;
    committer.set('events', 0, '3');
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(commits).toHaveLength(2);
  });
});
