/** The whole pipeline in this test process — matcher, dispatcher, writers and loopback receivers — on one file's topics. */
import { prepareCluster, type ClusterConfig } from '../services/common/setup.ts';
import type { Dispatcher, DispatcherSettings } from '../services/dispatcher/dispatcher.ts';
import type { Matcher } from '../services/matcher/matcher.ts';
import { startDispatcher, startReceiver, type Receiver } from './dispatcher/fixtures.ts';
import { testLogger } from './helpers.ts';
import { startMatcher, writers } from './matcher/fixtures.ts';

export interface Pipeline {
  io: Awaited<ReturnType<typeof writers>>;
  matcher: Matcher;
  dispatcher: Dispatcher;
  /** What would have made the dispatcher process exit, in order. */
  fatal: Error[];
  /** A receiver that is closed with the pipeline. */
  receiver(path?: string): Promise<Receiver>;
  stop(): Promise<void>;
}

export async function startPipeline(cluster: ClusterConfig, dispatcherSettings: Partial<DispatcherSettings> = {}): Promise<Pipeline> {
  await prepareCluster(cluster, testLogger);
  const io = await writers(cluster);
  const matcher = await startMatcher(cluster);
  const fatal: Error[] = [];
  const dispatcher = await startDispatcher(cluster, dispatcherSettings, (error) => fatal.push(error));
  const receivers: Receiver[] = [];
  return {
    io,
    matcher,
    dispatcher,
    fatal,
    async receiver(path) {
      const created = await startReceiver(path);
      receivers.push(created);
      return created;
    },
    async stop() {
      await dispatcher.stop();
      await matcher.stop();
      await io.close();
      await Promise.all(receivers.map((receiver) => receiver.close()));
    },
  };
}
