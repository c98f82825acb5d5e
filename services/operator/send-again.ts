/**
 * Deliveries an operator sends again — a dead-letter replay, a resend, a Recover — planned in one place: each goes to
 * the pool its rule's selectors choose now, as sentAgain() makes it (same delivery id, the next attempt number, the
 * whole schedule and a new age), or is refused, saying why (no command to send, rule gone, no pool fits).
 */
import type { DeliveryCommand, DispatcherPool, EventRule } from '../../schemas/index.ts';
import { sentAgain } from '../common/deliveries.ts';
import { choosePool } from '../common/pools.ts';
import type { TopicNames } from '../common/topics.ts';
import type { CommandSender } from './command-sender.ts';

/** One delivery to send again, as its caller knows it. */
export interface SendAgain<T> {
  entry: T;
  /** Undefined when there is nothing to send, `missing` saying why. */
  command: DeliveryCommand | undefined;
  missing: string;
  /** The delivery's highest attempt number so far. */
  lastAttempt: number;
  headers: Record<string, string>;
}

export interface SendPlan<T> {
  send: Array<SendAgain<T> & { command: DeliveryCommand; pool: string; topic: string }>;
  refused: Array<{ entry: T; why: string }>;
}

export function planSends<T>(items: Iterable<SendAgain<T>>, rules: (id: string) => EventRule | undefined, pools: Iterable<DispatcherPool>, names: TopicNames): SendPlan<T> {
  const plan: SendPlan<T> = { send: [], refused: [] };
  const poolList = [...pools];
  for (const item of items) {
    const { command, entry } = item;
    const rule = command && rules(command.ruleId);
    if (!command) plan.refused.push({ entry, why: item.missing });
    else if (!rule) plan.refused.push({ entry, why: `rule ${command.ruleId} no longer exists` });
    else {
      const route = choosePool(rule, command.event, poolList);
      if (route.ok) plan.send.push({ ...item, command, pool: route.pool, topic: names.deliveries(route.pool) });
      else plan.refused.push({ entry, why: route.error });
    }
  }
  return plan;
}

/** Sends a plan, one by one (each acknowledged), telling `onSent` after each; returns what it sent, each as sent. */
export async function sendPlanned<T>(plan: SendPlan<T>, sender: CommandSender, onSent: (done: number) => void = () => undefined): Promise<DeliveryCommand[]> {
  const sent: DeliveryCommand[] = [];
  for (const { command, lastAttempt, topic, headers } of plan.send) {
    const again = sentAgain(command, lastAttempt, Date.now());
    await sender.send(topic, again, headers);
    sent.push(again);
    onSent(sent.length);
  }
  return sent;
}
