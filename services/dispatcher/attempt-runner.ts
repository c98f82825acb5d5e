/**
 * One attempt: render and sign (prepare), then wait for the endpoint's slot, pass its breaker, take a place on the
 * wire and send (run), in the delivery's trace. Every outcome comes back as data; a command that cannot be rendered
 * or signed is reported as such instead of throwing, so one bad record never stops the pool.
 */
import type { AttemptRequest, DeliveryCommand, EndpointTls, EventRule } from '../../schemas/index.ts';
import { loggedBody } from '../common/deliveries.ts';
import { activeSecrets } from '../common/rules.ts';
import { signingKey } from '../common/signing-keys.ts';
import { requestTrace } from './attempt-trace.ts';
import { CircuitBreakers, EndpointSlots, Semaphore } from './isolation.ts';
import { renderPayload } from './payload.ts';
import { breakerVerdict } from './policy.ts';
import { fixedHeaders, type Sender, type SendResult } from './sender.ts';
import { sign } from './signing.ts';

/** Where a rule version's requests go. */
interface Target {
  url: URL;
  endpoint: string;
  /** The rule's own TLS settings (client certificate, CA), if any. */
  tls: EndpointTls | null;
}

/** What a rule version needs for sending, computed once per version rather than per delivery. */
interface SendPlan {
  target: Target;
  /** The rule's headers as the delivery log shows them: every value masked. */
  maskedHeaders: Record<string, string>;
  /** The secrets that sign from `secretsSince` until `secretsUntil` (the first `notAfter` still ahead then). */
  secrets: string[];
  secretsSince: number;
  secretsUntil: number;
  /** The signature header as the delivery log shows it: `v1,••••` or `v1a,••••` per signature. */
  maskedSignature: string;
}

export interface PreparedAttempt {
  command: DeliveryCommand;
  target: Target;
  headers: Record<string, string>;
  body: string;
  /** The request as the delivery log shows it: the signature and every rule-supplied header value masked. */
  request: AttemptRequest;
}

export type Prepared = { ok: true; attempt: PreparedAttempt } | { ok: false; error: string };

export type RunResult =
  | { kind: 'sent'; result: SendResult }
  | { kind: 'saturated'; detail: string; /** When the endpoint should have room again, if known. */ retryInMs: number | undefined }
  | { kind: 'breaker-open'; retryInMs: number };

const MASK = '••••';

export interface AttemptRunnerSettings {
  sender: Sender;
  breakers: CircuitBreakers;
  slots: EndpointSlots;
  /** Requests on the wire, over all endpoints. */
  wire: Semaphore;
  userAgent: string;
  describeLimits: string;
  /** Bytes of a request body the delivery log keeps. */
  logBodyBytes: number;
}

export class AttemptRunner {
  readonly #settings: AttemptRunnerSettings;
  readonly #fixedHeaders: Record<string, string>;
  readonly #plans = new WeakMap<EventRule, SendPlan>();

  constructor(settings: AttemptRunnerSettings) {
    this.#settings = settings;
    this.#fixedHeaders = fixedHeaders(settings.userAgent);
  }

  /** Renders and signs `command` under `rule`; anything thrown doing so (a date no Date can hold, say) is the record's fault. */
  prepare(command: DeliveryCommand, rule: EventRule, now: number): Prepared {
    try {
      const plan = this.#plan(rule, now);
      const body = renderPayload(command.event, rule);
      const signature = sign(command.deliveryId, body, plan.secrets, now);
      const headers = { ...rule.headers, ...signature };
      const shown = { ...this.#fixedHeaders, ...signature, 'webhook-signature': plan.maskedSignature, ...plan.maskedHeaders };
      return { ok: true, attempt: { command, target: plan.target, headers, body, request: { headers: shown, ...loggedBody(body, this.#settings.logBodyBytes) } } };
    } catch (error) {
      return { ok: false, error: `could not render or sign the payload: ${(error as Error).message}` };
    }
  }

  /** Sends a prepared attempt once its endpoint has room and its breaker admits it. */
  async run({ command, target, headers, body, request }: PreparedAttempt): Promise<RunResult> {
    const { slots, breakers, wire, sender } = this.#settings;
    const release = await slots.acquire(target.endpoint, Date.now(), request.bodyBytes ?? 0);
    if (typeof release !== 'function') return { kind: 'saturated', detail: `${target.endpoint} ${release.reason} (${this.#settings.describeLimits})`, retryInMs: release.retryInMs };
    try {
      // Decided only now: the breaker may have opened while this command waited, and half-open admits one trial.
      const admitted = breakers.admit(target.endpoint);
      if (!admitted.ok) return { kind: 'breaker-open', retryInMs: admitted.retryInMs };
      await wire.acquire();
      try {
        const trace = requestTrace(command, target.url);
        // The request carries the trace context, and the delivery log shows it as sent.
        Object.assign(headers, trace.headers);
        Object.assign(request.headers, trace.headers);
        const result = await sender.send(target.url, headers, body, target.tls);
        trace.end(result);
        // Every admitted request reports back, whatever its outcome: a half-open breaker never stays half-open.
        breakers.report(target.endpoint, breakerVerdict(result));
        return { kind: 'sent', result };
      } finally {
        wire.release();
      }
    } finally {
      release();
    }
  }

  /** The endpoint (origin) a rule's requests go to. */
  endpointOf(rule: EventRule): string {
    return this.#plan(rule, Date.now()).target.endpoint;
  }

  #plan(rule: EventRule, now: number): SendPlan {
    let plan = this.#plans.get(rule);
    if (!plan || now >= plan.secretsUntil || now < plan.secretsSince) {
      const url = plan?.target.url ?? new URL(rule.url);
      const secrets = activeSecrets(rule, now);
      const ahead = rule.secrets.map(({ notAfter }) => notAfter ?? Infinity).filter((notAfter) => notAfter > now);
      plan = {
        target: plan?.target ?? { url, endpoint: url.origin, tls: rule.tls },
        maskedHeaders: Object.fromEntries(Object.keys(rule.headers).map((name) => [name, MASK])),
        secrets,
        secretsSince: now,
        secretsUntil: Math.min(Infinity, ...ahead),
        maskedSignature: secrets.map((secret) => `${signingKey(secret)?.scheme ?? 'v1'},${MASK}`).join(' '),
      };
      this.#plans.set(rule, plan);
    }
    return plan;
  }
}
