// Generated from schemas/*.avsc by `npm run schemas:types`. Do not edit: change the schema and regenerate.

/** A workflow, pipeline or task lifecycle event published by a workflow engine. Key: the workflow execution id (else the pipeline execution id, else the event id), so one execution's events stay in order. */
export interface WorkflowEvent {
  /** Unique per event; receivers and the matcher use it to de-duplicate. */
  eventId: string;
  type: EventType;
  occurredAt: number;
  application: EntityRef;
  pipeline: null | EntityRef;
  workflow: null | EntityRef;
  /** The workflow run id. */
  workflowExecutionId: null | string;
  pipelineExecutionId: null | string;
  /** Set on task events only. */
  task: null | TaskRef;
  /** The engine's execution status, e.g. RUNNING, SUCCESS, FAILED, PAUSED. */
  status: null | string;
  startedAt: null | number;
  completedAt: null | number;
  environments: Array<EntityRef>;
  services: Array<EntityRef>;
  infraDefinitions: Array<EntityRef>;
  /** The person who started the execution: end-user data, dropped from payloads of rules with includeUserData=false. */
  triggeredBy: null | Person;
}

/** WorkflowEvent as a producer writes it: fields with a schema default may be left out. */
export interface WorkflowEventInput {
  /** Unique per event; receivers and the matcher use it to de-duplicate. */
  eventId: string;
  type: EventType;
  occurredAt: number;
  application: EntityRefInput;
  pipeline?: null | EntityRefInput;
  workflow?: null | EntityRefInput;
  /** The workflow run id. */
  workflowExecutionId?: null | string;
  pipelineExecutionId?: null | string;
  /** Set on task events only. */
  task?: null | TaskRefInput;
  /** The engine's execution status, e.g. RUNNING, SUCCESS, FAILED, PAUSED. */
  status?: null | string;
  startedAt?: null | number;
  completedAt?: null | number;
  environments?: Array<EntityRefInput>;
  services?: Array<EntityRefInput>;
  infraDefinitions?: Array<EntityRefInput>;
  /** The person who started the execution: end-user data, dropped from payloads of rules with includeUserData=false. */
  triggeredBy?: null | PersonInput;
}

/** Readers that do not know a newer symbol read it as 'unknown' and dead-letter the event instead of failing. */
export type EventType = 'unknown' | 'workflow_started' | 'workflow_completed' | 'workflow_failed' | 'workflow_paused' | 'workflow_continued' | 'pipeline_started' | 'pipeline_completed' | 'pipeline_paused' | 'pipeline_continued' | 'task_started' | 'task_completed' | 'task_cancelled';

/** An entity of the workflow engine (application, pipeline, workflow, environment, service, infrastructure definition). */
export interface EntityRef {
  id: string;
  name: null | string;
}

/** EntityRef as a producer writes it: fields with a schema default may be left out. */
export interface EntityRefInput {
  id: string;
  name?: null | string;
}

export interface TaskRef {
  id: string;
  name: null | string;
  /** The task run id. */
  runId: string;
}

/** TaskRef as a producer writes it: fields with a schema default may be left out. */
export interface TaskRefInput {
  id: string;
  name?: null | string;
  /** The task run id. */
  runId: string;
}

export interface Person {
  uuid: string;
  name: null | string;
  email: null | string;
}

/** Person as a producer writes it: fields with a schema default may be left out. */
export interface PersonInput {
  uuid: string;
  name?: null | string;
  email?: null | string;
}

/** An operator's rule: send these events of these workflows or pipelines to this URL, signed. Compacted topic keyed by rule id; a tombstone deletes the rule. */
export interface EventRule {
  id: string;
  /** Application id; a rule only sees its application's events. */
  application: string;
  name: string;
  /** A new rule is disabled until it says otherwise. */
  enabled: boolean;
  scope: RuleScope;
  /** null means all event types. */
  eventTypes: null | Array<EventType>;
  url: string;
  headers: Record<string, string>;
  /** Standard Webhooks signing keys: whsec_<base64> (HMAC, v1) or whsk_<base64 of an ed25519 seed> (v1a); during a rotation the request carries one signature per key still valid. */
  secrets: Array<SigningSecret>;
  /** What the rule's current keys are: v1 (HMAC-SHA256, a secret the receiver shares) or v1a (ed25519: the receiver holds only the public key, whpk_). Keys past their notAfter may be of the other scheme during a rotation. */
  signatureScheme: SignatureScheme;
  tls: null | EndpointTls;
  /** Tags a dispatcher pool must all have; ${...} expressions are resolved from the event. */
  delegateSelectors: Array<string>;
  payloadFormat: PayloadFormat;
  /** false drops the person who triggered the execution from every payload. */
  includeUserData: boolean;
  rateLimitPerSecond: null | number;
  /** Why the system disabled the rule, e.g. the endpoint answered 410 Gone. */
  disabledReason: null | string;
  updatedAt: number;
}

/** EventRule as a producer writes it: fields with a schema default may be left out. */
export interface EventRuleInput {
  id: string;
  /** Application id; a rule only sees its application's events. */
  application: string;
  name: string;
  /** A new rule is disabled until it says otherwise. */
  enabled?: boolean;
  scope: RuleScopeInput;
  /** null means all event types. */
  eventTypes?: null | Array<EventType>;
  url: string;
  headers?: Record<string, string>;
  /** Standard Webhooks signing keys: whsec_<base64> (HMAC, v1) or whsk_<base64 of an ed25519 seed> (v1a); during a rotation the request carries one signature per key still valid. */
  secrets: Array<SigningSecretInput>;
  /** What the rule's current keys are: v1 (HMAC-SHA256, a secret the receiver shares) or v1a (ed25519: the receiver holds only the public key, whpk_). Keys past their notAfter may be of the other scheme during a rotation. */
  signatureScheme?: SignatureScheme;
  tls?: null | EndpointTlsInput;
  /** Tags a dispatcher pool must all have; ${...} expressions are resolved from the event. */
  delegateSelectors?: Array<string>;
  payloadFormat?: PayloadFormat;
  /** false drops the person who triggered the execution from every payload. */
  includeUserData?: boolean;
  rateLimitPerSecond?: null | number;
  /** Why the system disabled the rule, e.g. the endpoint answered 410 Gone. */
  disabledReason?: null | string;
  updatedAt: number;
}

export interface RuleScope {
  kind: ScopeKind;
  /** Workflow or pipeline ids; null means all of that kind. */
  ids: null | Array<string>;
}

/** RuleScope as a producer writes it: fields with a schema default may be left out. */
export interface RuleScopeInput {
  kind: ScopeKind;
  /** Workflow or pipeline ids; null means all of that kind. */
  ids?: null | Array<string>;
}

export type ScopeKind = 'everything' | 'workflows' | 'pipelines';

export interface SigningSecret {
  secret: string;
  /** Set on the old secret during a rotation; ignored from then on. */
  notAfter: null | number;
}

/** SigningSecret as a producer writes it: fields with a schema default may be left out. */
export interface SigningSecretInput {
  secret: string;
  /** Set on the old secret during a rotation; ignored from then on. */
  notAfter?: null | number;
}

export type SignatureScheme = 'v1' | 'v1a';

/** How the dispatcher speaks TLS to this rule's endpoint (https only). */
export interface EndpointTls {
  /** PEM certificate (chain) presented to the endpoint: mutual TLS. */
  clientCertificate: null | string;
  /** PEM private key of clientCertificate: a secret, never shown or logged. */
  clientKey: null | string;
  /** PEM CA certificate(s) trusted for the endpoint's certificate, instead of the system's. */
  ca: null | string;
}

/** EndpointTls as a producer writes it: fields with a schema default may be left out. */
export interface EndpointTlsInput {
  /** PEM certificate (chain) presented to the endpoint: mutual TLS. */
  clientCertificate?: null | string;
  /** PEM private key of clientCertificate: a secret, never shown or logged. */
  clientKey?: null | string;
  /** PEM CA certificate(s) trusted for the endpoint's certificate, instead of the system's. */
  ca?: null | string;
}

export type PayloadFormat = 'standard' | 'harness_v1' | 'sharering';

/** Deliver one event to one rule's endpoint. Keyed by the endpoint (the URL's origin), so each endpoint's commands share a partition number in every command and retry topic; by rule id when the writer does not know the endpoint. */
export interface DeliveryCommand {
  /** Deterministic from event id and rule id: the same on every retry and every duplicate; sent as webhook-id. */
  deliveryId: string;
  ruleId: string;
  event: WorkflowEvent;
  /** 1 for the first attempt; numbers go on across resends and replays, so each attempt of a delivery has its own. */
  attempt: number;
  /** The attempt is due at this time. */
  notBefore: number;
  /** When the matcher created the delivery; a delivery older than the dispatcher's maximum age is dead-lettered as expired. */
  createdAt: number;
  /** Where the rule version the matcher matched sits on the event-rules topic: a dispatcher whose rules table has not read that far waits for it before deciding the rule was deleted or disabled. */
  ruleVersion: null | RuleVersion;
  /** The attempt the retry schedule started at: 1, or for a resend or replay the attempt after the delivery's last, so the schedule starts over while the numbers go on. */
  firstAttempt: number;
  /** An operator's Test (console or CLI): sent even while the rule is disabled, so a rule can be tried before it goes live. A matched event's command never is. */
  sample: boolean;
  /** The W3C trace context the delivery belongs to: the producer's (from the event's Kafka headers), or the matcher's match span when the matcher traces. Kept on every retry and dead-letter copy; sent as the webhook's traceparent and tracestate. */
  trace: null | TraceContext;
}

/** DeliveryCommand as a producer writes it: fields with a schema default may be left out. */
export interface DeliveryCommandInput {
  /** Deterministic from event id and rule id: the same on every retry and every duplicate; sent as webhook-id. */
  deliveryId: string;
  ruleId: string;
  event: WorkflowEventInput;
  /** 1 for the first attempt; numbers go on across resends and replays, so each attempt of a delivery has its own. */
  attempt: number;
  /** The attempt is due at this time. */
  notBefore: number;
  /** When the matcher created the delivery; a delivery older than the dispatcher's maximum age is dead-lettered as expired. */
  createdAt: number;
  /** Where the rule version the matcher matched sits on the event-rules topic: a dispatcher whose rules table has not read that far waits for it before deciding the rule was deleted or disabled. */
  ruleVersion?: null | RuleVersionInput;
  /** The attempt the retry schedule started at: 1, or for a resend or replay the attempt after the delivery's last, so the schedule starts over while the numbers go on. */
  firstAttempt?: number;
  /** An operator's Test (console or CLI): sent even while the rule is disabled, so a rule can be tried before it goes live. A matched event's command never is. */
  sample?: boolean;
  /** The W3C trace context the delivery belongs to: the producer's (from the event's Kafka headers), or the matcher's match span when the matcher traces. Kept on every retry and dead-letter copy; sent as the webhook's traceparent and tracestate. */
  trace?: null | TraceContextInput;
}

export interface RuleVersion {
  partition: number;
  offset: number;
}

/** RuleVersion as a producer writes it: fields with a schema default may be left out. */
export interface RuleVersionInput {
  partition: number;
  offset: number;
}

export interface TraceContext {
  /** version-traceid-parentid-flags, as W3C Trace Context defines it. */
  traceparent: string;
  tracestate: null | string;
}

/** TraceContext as a producer writes it: fields with a schema default may be left out. */
export interface TraceContextInput {
  /** version-traceid-parentid-flags, as W3C Trace Context defines it. */
  traceparent: string;
  tracestate?: null | string;
}

/** One record per delivery attempt (or per decision not to attempt). Never carries a secret or URL credentials. */
export interface DeliveryLog {
  deliveryId: string;
  attempt: number;
  ruleId: string;
  ruleName: null | string;
  application: null | string;
  eventId: string;
  eventType: EventType;
  /** Target URL without userinfo; null when no rule was found. */
  url: null | string;
  outcome: DeliveryOutcome;
  httpStatus: null | number;
  error: null | string;
  latencyMs: null | number;
  attemptedAt: number;
  nextAttemptAt: null | number;
  pool: null | string;
  /** Why the attempt was put off without being made (outcome retrying, nothing sent); null for an attempt that was made, and in records that predate this field. */
  deferral: null | DeferralCause;
  /** The W3C trace id of the delivery's trace (32 hex digits); null when the event carried no trace context. */
  traceId: null | string;
  /** What was sent; null when nothing was sent (or the record predates this field). */
  request: null | AttemptRequest;
  /** What the endpoint answered; null when no response arrived. */
  response: null | AttemptResponse;
}

/** DeliveryLog as a producer writes it: fields with a schema default may be left out. */
export interface DeliveryLogInput {
  deliveryId: string;
  attempt: number;
  ruleId: string;
  ruleName?: null | string;
  application?: null | string;
  eventId: string;
  eventType: EventType;
  /** Target URL without userinfo; null when no rule was found. */
  url?: null | string;
  outcome: DeliveryOutcome;
  httpStatus?: null | number;
  error?: null | string;
  latencyMs?: null | number;
  attemptedAt: number;
  nextAttemptAt?: null | number;
  pool?: null | string;
  /** Why the attempt was put off without being made (outcome retrying, nothing sent); null for an attempt that was made, and in records that predate this field. */
  deferral?: null | DeferralCause;
  /** The W3C trace id of the delivery's trace (32 hex digits); null when the event carried no trace context. */
  traceId?: null | string;
  /** What was sent; null when nothing was sent (or the record predates this field). */
  request?: null | AttemptRequestInput;
  /** What the endpoint answered; null when no response arrived. */
  response?: null | AttemptResponseInput;
}

export type DeliveryOutcome = 'delivered' | 'retrying' | 'failed' | 'dead_lettered' | 'blocked' | 'skipped';

export type DeferralCause = 'breaker_open' | 'endpoint_saturated' | 'rate_limited' | 'rule_version_pending';

export interface AttemptRequest {
  /** As sent, but webhook-signature and every rule-supplied header value masked: they may be credentials. */
  headers: Record<string, string>;
  /** The payload as sent, up to the dispatcher's log body limit (UTF-8, cut on a character boundary). */
  body: string;
  bodyTruncated: boolean;
  /** The whole payload's size in bytes (null in records that predate this field). */
  bodyBytes: null | number;
  /** Hex SHA-256 of the whole payload as sent. */
  bodySha256: null | string;
}

/** AttemptRequest as a producer writes it: fields with a schema default may be left out. */
export interface AttemptRequestInput {
  /** As sent, but webhook-signature and every rule-supplied header value masked: they may be credentials. */
  headers: Record<string, string>;
  /** The payload as sent, up to the dispatcher's log body limit (UTF-8, cut on a character boundary). */
  body: string;
  bodyTruncated?: boolean;
  /** The whole payload's size in bytes (null in records that predate this field). */
  bodyBytes?: null | number;
  /** Hex SHA-256 of the whole payload as sent. */
  bodySha256?: null | string;
}

export interface AttemptResponse {
  headers: Record<string, string>;
  /** Up to the dispatcher's log body limit (UTF-8, cut on a character boundary). */
  body: string;
  bodyTruncated: boolean;
  /** The bytes of the body received (the dispatcher stops reading past its response cap). */
  bodyBytes: null | number;
  /** Hex SHA-256 of the whole body; null when it was not read to its end. */
  bodySha256: null | string;
}

/** AttemptResponse as a producer writes it: fields with a schema default may be left out. */
export interface AttemptResponseInput {
  headers: Record<string, string>;
  /** Up to the dispatcher's log body limit (UTF-8, cut on a character boundary). */
  body: string;
  bodyTruncated?: boolean;
  /** The bytes of the body received (the dispatcher stops reading past its response cap). */
  bodyBytes?: null | number;
  /** Hex SHA-256 of the whole body; null when it was not read to its end. */
  bodySha256?: null | string;
}

/** A pool of dispatchers announcing itself (Harness's delegates): rules whose delegate selectors are all among its tags are delivered by it. Compacted topic keyed by pool name. */
export interface DispatcherPool {
  pool: string;
  tags: Array<string>;
  updatedAt: number;
  /** The pool's SSRF allowlist (DISPATCHER_ALLOW_NETWORKS: CIDR ranges and host names it dials although not public), so a rule whose URL the pool may not dial is flagged when it is saved; null from a dispatcher that does not announce it. */
  allowNetworks: null | Array<string>;
}

/** DispatcherPool as a producer writes it: fields with a schema default may be left out. */
export interface DispatcherPoolInput {
  pool: string;
  tags?: Array<string>;
  updatedAt: number;
  /** The pool's SSRF allowlist (DISPATCHER_ALLOW_NETWORKS: CIDR ranges and host names it dials although not public), so a rule whose URL the pool may not dial is flagged when it is saved; null from a dispatcher that does not announce it. */
  allowNetworks?: null | Array<string>;
}

/** Since when a rule's endpoint has failed without a single success, kept by the dispatchers so the clock behind 'disable a rule failing for too long' survives restarts and rebalances. Compacted topic keyed by rule id; a tombstone when the endpoint succeeds again. */
export interface EndpointHealth {
  ruleId: string;
  /** The URL that failed: a rule edited to another URL starts over. */
  url: string;
  failingSince: number;
  /** The pool whose dispatcher saw the first failure. */
  pool: string;
}

/** EndpointHealth as a producer writes it: fields with a schema default may be left out. */
export interface EndpointHealthInput {
  ruleId: string;
  /** The URL that failed: a rule edited to another URL starts over. */
  url: string;
  failingSince: number;
  /** The pool whose dispatcher saw the first failure. */
  pool: string;
}
