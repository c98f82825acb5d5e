/**
 * The contracts: the Avro schemas in this folder, parsed once, with what every service needs from them.
 * The .avsc files are the single source; TypeScript types in ./types.ts are generated from them
 * (`npm run schemas:types`), and a test fails when they drift.
 */
import avro from 'avsc';
import { readFileSync } from 'node:fs';
import type { DeliveryCommand, DeliveryLog, DeliveryOutcome, DispatcherPool, EndpointHealth, EventRule, EventType, PayloadFormat, SignatureScheme, WorkflowEvent } from './types.ts';

export type * from './types.ts';

/** One Avro contract: its parsed type and the self-contained schema registered as `<topic>-value`. */
export interface Contract<T> {
  /** Full Avro name, e.g. workflowhooks.WorkflowEvent. */
  readonly name: string;
  readonly type: avro.Type;
  /** The schema with every referenced named type inlined, as the registry needs it. */
  readonly schema: object;
  /** Phantom field: ties the contract to the type generated from the same schema. */
  readonly __value?: T;
}

/** Files in dependency order: later schemas reference named types of earlier ones (EventType, WorkflowEvent). */
const files = ['workflow-event', 'event-rule', 'delivery-command', 'delivery-log', 'dispatcher-pool', 'endpoint-health'] as const;
export type ContractFile = (typeof files)[number];

const namedTypes: Record<string, avro.Type> = {};
const parsed = new Map<ContractFile, avro.Type>();
/** The `timestamp-millis` longs of every contract: avsc reads them as plain longs and forgets the logical type. */
const timestampTypes = new WeakSet<avro.Type>();
const typeHook = (schema: avro.Schema): avro.Type | undefined => {
  if (typeof schema !== 'object' || (schema as { logicalType?: unknown }).logicalType !== 'timestamp-millis') return undefined;
  const type = avro.Type.forSchema('long');
  timestampTypes.add(type);
  return type;
};
for (const file of files) {
  const json: unknown = JSON.parse(readFileSync(new URL(`./${file}.avsc`, import.meta.url), 'utf8'));
  parsed.set(file, avro.Type.forSchema(json as avro.Schema, { registry: namedTypes, typeHook }));
}

function contract<T>(file: ContractFile): Contract<T> {
  const type = parsed.get(file)!;
  return { name: type.name!, type, schema: type.schema({ exportAttrs: true }) as object };
}

export const contracts = {
  workflowEvent: contract<WorkflowEvent>('workflow-event'),
  eventRule: contract<EventRule>('event-rule'),
  deliveryCommand: contract<DeliveryCommand>('delivery-command'),
  deliveryLog: contract<DeliveryLog>('delivery-log'),
  dispatcherPool: contract<DispatcherPool>('dispatcher-pool'),
  endpointHealth: contract<EndpointHealth>('endpoint-health'),
} as const;

/** Where records are encoded: grown to the largest record encoded so far and reused (encoding is synchronous). */
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * `value`'s Avro binary after `header` (the wire format's magic byte and schema id, say), in a buffer of its own.
 * avsc's toBuffer() encodes a record of over 1 kB twice (first to size it) into a zero-filled buffer, which a header
 * then costs another copy of; this encodes once into a reused buffer and copies out the bytes written.
 */
export function toBinary<T>(contract: Contract<T>, value: T, header?: Buffer): Buffer {
  const start = header?.length ?? 0;
  for (;;) {
    // avsc answers a buffer too small with minus the bytes missing.
    const end = contract.type.encode(value, scratch, start);
    if (end >= 0) {
      const binary = Buffer.allocUnsafe(end);
      header?.copy(binary, 0);
      scratch.copy(binary, start, start, end);
      return binary;
    }
    scratch = Buffer.allocUnsafeSlow(2 ** Math.ceil(Math.log2(scratch.length - end)));
  }
}

/** Every parsed contract in dependency order, for tools (type generation) that walk them all. */
export const allContractTypes: readonly avro.Type[] = files.map((file) => parsed.get(file)!);

/** Event types a producer may publish; `unknown` only exists so old readers can decode newer types. */
export const EVENT_TYPES = (namedTypes['workflowhooks.EventType'] as avro.types.EnumType).symbols.filter(
  (symbol): symbol is Exclude<EventType, 'unknown'> => symbol !== 'unknown',
);

const symbols = (name: string): readonly string[] => (namedTypes[`workflowhooks.${name}`] as avro.types.EnumType).symbols;

/** The payload formats a rule may choose, and a delivery attempt's outcomes: forms, filters and the API list these. */
export const PAYLOAD_FORMATS = symbols('PayloadFormat') as readonly PayloadFormat[];
export const DELIVERY_OUTCOMES = symbols('DeliveryOutcome') as readonly DeliveryOutcome[];
export const SIGNATURE_SCHEMES = symbols('SignatureScheme') as readonly SignatureScheme[];

export interface ValidationIssue {
  /** Dotted path of the offending field, e.g. `application.id` or `environments.0.id`. */
  readonly field: string;
  readonly reason: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

/**
 * Checks a plain object against a contract: fields left out take their schema default, unknown fields are refused,
 * and every problem is reported with the path of the field and why, so callers can say exactly what to fix.
 */
export function validate<T>(contract: Contract<T>, input: unknown, options: { conceal?: (field: string) => boolean } = {}): Validated<T> {
  const value = withDefaults(contract.type, input);
  const issues: ValidationIssue[] = [];
  contract.type.isValid(value, {
    errorHook: (path, got, type) => {
      const field = path.join('.') || '(value)';
      // A secret in the wrong shape must not be echoed into logs, API answers or dead-letter headers.
      issues.push({ field, reason: describe(options.conceal?.(field) ? undefined : got, type, got === undefined) });
    },
  });
  collectUndeclaredFields(contract.type, value, [], issues);
  collectTimestampIssues(contract.type, value, [], issues);
  return issues.length === 0 ? { ok: true, value: value as T } : { ok: false, issues };
}

/** A JavaScript Date holds ±8.64e15 ms around 1970; an Avro long holds far more, which no reader could render. */
const MAX_DATE_MS = 8.64e15;

/**
 * Timestamps of a well-typed value (one that decoded, or passed validate) that no Date can hold, each with its field.
 * validate() includes these; the registry's decode refuses such records, so every consumer dead-letters them.
 */
export function timestampIssues<T>(contract: Contract<T>, value: T): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  collectTimestampIssues(contract.type, value, [], issues);
  return issues;
}

/** Per type: whether a timestamp may sit inside it. */
const holdsTimestamps = new WeakMap<avro.Type, boolean>();

function hasTimestamps(type: avro.Type): boolean {
  let holds = holdsTimestamps.get(type);
  if (holds !== undefined) return holds;
  // A recursive reference counts as holding one while its type is being looked at: at worst a subtree is walked.
  holdsTimestamps.set(type, true);
  if (timestampTypes.has(type)) holds = true;
  else if (type instanceof avro.types.RecordType) holds = type.fields.some((field) => hasTimestamps(field.type));
  else if (type instanceof avro.types.ArrayType) holds = hasTimestamps(type.itemsType);
  else if (type instanceof avro.types.UnwrappedUnionType) holds = type.types.some(hasTimestamps);
  else holds = false;
  holdsTimestamps.set(type, holds);
  return holds;
}

function collectTimestampIssues(type: avro.Type, value: unknown, path: string[], issues: ValidationIssue[]): void {
  // Consumers run this on every record: subtrees without timestamps (most of a record) are not walked.
  if (!hasTimestamps(type)) return;
  if (timestampTypes.has(type)) {
    if (typeof value === 'number' && !(Math.abs(value) <= MAX_DATE_MS)) {
      issues.push({ field: path.join('.'), reason: `must be a time within the JavaScript date range (±${MAX_DATE_MS} ms around 1970, years -271821 to 275760) (got ${value})` });
    }
  } else if (type instanceof avro.types.RecordType && isPlainObject(value)) {
    // One path, pushed and popped: consumers run this on every record they decode, so nothing is allocated unless it fails.
    for (const field of type.fields) {
      path.push(field.name);
      collectTimestampIssues(field.type, value[field.name], path, issues);
      path.pop();
    }
  } else if (type instanceof avro.types.ArrayType && Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) {
      path.push(String(index));
      collectTimestampIssues(type.itemsType, value[index], path, issues);
      path.pop();
    }
  } else if (type instanceof avro.types.UnwrappedUnionType && value !== null && value !== undefined) {
    for (const branch of type.types) collectTimestampIssues(branch, value, path, issues);
  }
}

function withDefaults(type: avro.Type, value: unknown): unknown {
  if (type instanceof avro.types.RecordType) {
    if (!isPlainObject(value)) return value;
    const out: Record<string, unknown> = { ...value };
    for (const field of type.fields) {
      const given = out[field.name];
      if (given === undefined) {
        const fallback: unknown = field.defaultValue();
        if (fallback !== undefined) out[field.name] = fallback;
      } else {
        out[field.name] = withDefaults(field.type, given);
      }
    }
    return out;
  }
  if (type instanceof avro.types.ArrayType) {
    return Array.isArray(value) ? value.map((item) => withDefaults(type.itemsType, item)) : value;
  }
  if (type instanceof avro.types.MapType && isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, withDefaults(type.valuesType as avro.Type, item)]));
  }
  if (type instanceof avro.types.UnwrappedUnionType && value !== null && value !== undefined) {
    const branch = type.types.find((candidate) => candidate.typeName !== 'null');
    return branch ? withDefaults(branch, value) : value;
  }
  return value;
}

function collectUndeclaredFields(type: avro.Type, value: unknown, path: string[], issues: ValidationIssue[]): void {
  if (type instanceof avro.types.RecordType && isPlainObject(value)) {
    const declared = new Set(type.fields.map((field) => field.name));
    for (const key of Object.keys(value)) {
      if (!declared.has(key)) issues.push({ field: [...path, key].join('.'), reason: `unknown field (known: ${[...declared].join(', ')})` });
    }
    for (const field of type.fields) collectUndeclaredFields(field.type, value[field.name], [...path, field.name], issues);
  } else if (type instanceof avro.types.ArrayType && Array.isArray(value)) {
    value.forEach((item, index) => collectUndeclaredFields(type.itemsType, item, [...path, String(index)], issues));
  } else if (type instanceof avro.types.UnwrappedUnionType && value !== null && value !== undefined) {
    for (const branch of type.types) collectUndeclaredFields(branch, value, path, issues);
  }
}

/** Why `got` does not fit `type`; `got` undefined with `missing` false means the value is concealed. */
function describe(got: unknown, type: avro.Type, missing: boolean): string {
  if (missing) return 'is required';
  const shown = got === undefined ? '' : ` (got ${JSON.stringify(got) ?? String(got)})`;
  if (type instanceof avro.types.EnumType) return `must be one of ${type.symbols.join(', ')}${shown}`;
  const expected = type instanceof avro.types.UnwrappedUnionType ? type.types.map(typeLabel).join(' or ') : typeLabel(type);
  return `must be ${expected}${shown}`;
}

function typeLabel(type: avro.Type): string {
  if (type instanceof avro.types.RecordType) return 'an object';
  if (type instanceof avro.types.ArrayType) return 'an array';
  if (type instanceof avro.types.MapType) return 'an object of strings';
  if (type.typeName === 'long' || type.typeName === 'int') return `an integer (${type.typeName})`;
  return type.typeName === 'null' ? 'null' : `a ${type.typeName}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
