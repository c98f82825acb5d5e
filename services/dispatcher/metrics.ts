/** The dispatcher's Prometheus metrics. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DeliveryLog } from '../../schemas/index.ts';
import type { RecordedFollowUp } from './recorder.ts';

export interface DispatcherGauges {
  /** Requests on the wire. */
  inFlight: () => number;
  /** Commands read and not yet finished (on the wire, waiting for an endpoint, being recorded). */
  held: () => number;
  /** Bytes of those commands and of their rendered bodies. */
  heldBytes: () => number;
  /** Endpoints by breaker state (open, half-open). */
  breakers: () => Map<string, number>;
}

export function dispatcherMetrics(registry: Registry, gauges: DispatcherGauges) {
  const attempts = new Counter({ name: 'dispatcher_attempts_total', help: 'Delivery-log records by outcome', labelNames: ['outcome'], registers: [registry] });
  const retries = new Counter({ name: 'dispatcher_retries_total', help: 'Commands written to a retry topic, by its delay', labelNames: ['delay'], registers: [registry] });
  const deadLettered = new Counter({ name: 'dispatcher_dead_lettered_total', help: 'Commands sent to the dead-letter topic', labelNames: ['reason'], registers: [registry] });
  const rulesDisabled = new Counter({ name: 'dispatcher_rules_disabled_total', help: 'Rules disabled by the dispatcher (410 Gone, failing for too long)', registers: [registry] });
  const rebalances = new Counter({ name: 'dispatcher_rebalances_total', help: 'Consumer-group rebalances this member took part in after its first join', registers: [registry] });
  const latency = new Histogram({
    name: 'dispatcher_request_duration_seconds',
    help: 'Time from sending a request to its response or failure',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15],
    registers: [registry],
  });
  new Gauge({ name: 'dispatcher_in_flight', help: 'Requests on the wire', registers: [registry], collect() { this.set(gauges.inFlight()); } });
  new Gauge({ name: 'dispatcher_commands_held', help: 'Commands read and not yet finished', registers: [registry], collect() { this.set(gauges.held()); } });
  new Gauge({ name: 'dispatcher_held_bytes', help: 'Bytes of commands read and not yet finished, and of their rendered bodies', registers: [registry], collect() { this.set(gauges.heldBytes()); } });
  new Gauge({
    name: 'dispatcher_breakers',
    help: 'Endpoints whose circuit breaker is open or half-open',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, count] of gauges.breakers()) this.set({ state }, count);
    },
  });
  // The labelled child per outcome, looked up once: a lookup by label object hashes the labels on every record.
  const byOutcome = new Map<DeliveryLog['outcome'], Counter.Internal>();
  return {
    observeLatency: (ms: number) => latency.observe(ms / 1000),
    recorded(outcome: DeliveryLog['outcome'], followUp: RecordedFollowUp): void {
      let child = byOutcome.get(outcome);
      if (!child) byOutcome.set(outcome, (child = attempts.labels({ outcome })));
      child.inc();
      if (followUp.kind === 'retry') retries.inc({ delay: String(followUp.topicDelayMs) });
      if (followUp.kind === 'dead-letter') deadLettered.inc({ reason: followUp.reason });
      if (followUp.kind === 'disable') {
        rulesDisabled.inc();
        if (followUp.deadLetter) deadLettered.inc({ reason: 'rule-disabled' });
      }
    },
    deadLetteredInput: (reason: string) => deadLettered.inc({ reason }),
    rebalanced: () => rebalances.inc(),
  };
}
