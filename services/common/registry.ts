/**
 * Avro over a Confluent-compatible schema registry (Confluent Schema Registry, Apicurio's /apis/ccompat/v7, …).
 * Records use the Confluent wire format: magic byte 0, the 4-byte schema id, then the Avro binary body.
 * Decoding reads with the writer's schema and resolves into the reader's contract, so a producer on a newer
 * (BACKWARD-compatible) schema never breaks an older consumer, and a record of any other schema is refused.
 */
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { request } from 'undici';
import { timestampIssues, type Contract } from '../../schemas/index.ts';

const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

/** Why a record cannot be used; consumers dead-letter it with this reason. */
export type DecodeFailure = 'not-wire-format' | 'unknown-schema-id' | 'wrong-schema' | 'malformed-avro' | 'unknown-event-type' | 'too-large' | 'invalid';

export class DecodeError extends Error {
  override name = 'DecodeError';
  readonly reason: DecodeFailure;
  constructor(reason: DecodeFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** The registry refused a schema (incompatible change, invalid schema) or could not be reached. */
export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FULL' | 'NONE';

export interface Codec<T> {
  readonly subject: string;
  readonly schemaId: number;
  encode(value: T): Buffer;
}

export class SchemaRegistryClient {
  readonly #url: string;
  /** Resolvers per writer schema id and reader contract: built once, reused for every record. */
  readonly #resolvers = new Map<string, Promise<avro.Resolver>>();

  readonly #client: SchemaRegistry;
  readonly #retries: number;

  constructor(url: string, { retries = 3 }: { retries?: number } = {}) {
    this.#url = url.replace(/\/+$/, '');
    this.#retries = retries;
    this.#client = new SchemaRegistry({ host: this.#url, retry: { retries, initialRetryTimeInSecs: 0.2, maxRetryTimeInSecs: 2 } });
  }

  /** Sets the subject's compatibility level; the registry then refuses any new version that breaks it. */
  async setCompatibility(subject: string, level: Compatibility): Promise<void> {
    const response = await this.#http('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
    if (response.status >= 300) throw new RegistryError(`setting ${level} on ${subject}: ${response.message}`, response.status);
  }

  /**
   * Registers a contract under `subject` with BACKWARD compatibility (or the given level) and returns its id.
   * An already registered schema is only looked up: services starting together then read, not write, and a
   * write never waits longer than the request timeout.
   */
  async register(subject: string, schema: object, compatibility: Compatibility = 'BACKWARD'): Promise<number> {
    const body = { schema: JSON.stringify(schema) };
    const existing = await this.#http('POST', `/subjects/${encodeURIComponent(subject)}`, body);
    if (existing.status < 300) return (existing.body as { id: number }).id;
    await this.setCompatibility(subject, compatibility);
    // The client library has no request timeout of its own: bound the write so a stuck registry fails, not hangs.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RegistryError(`registering ${subject}: no answer from ${this.#url} within 20 s`)), 20_000);
    });
    try {
      const registering = this.#client.register({ type: SchemaType.AVRO, schema: body.schema }, { subject, compatibility: COMPATIBILITY[compatibility] });
      return (await Promise.race([registering, timeout])).id;
    } catch (error) {
      if (error instanceof RegistryError) throw error;
      const status = (error as { status?: number }).status;
      const reason = status === 409 ? 'the registry refused an incompatible schema: ' : '';
      throw new RegistryError(`registering ${subject}: ${reason}${(error as Error).message}`, status);
    } finally {
      clearTimeout(timer);
    }
  }

  /** An encoder for one subject; the schema id is resolved (registering the contract if needed) once, here. */
  async codec<T>(subject: string, contract: Contract<T>): Promise<Codec<T>> {
    const schemaId = await this.register(subject, contract.schema);
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt8(MAGIC_BYTE, 0);
    header.writeInt32BE(schemaId, 1);
    return {
      subject,
      schemaId,
      encode: (value) => Buffer.concat([header, contract.type.toBuffer(value)]),
    };
  }

  /**
   * Decodes a record written with any registered version of `contract`'s schema into the contract's shape.
   * Throws DecodeError for input that can never be decoded, holds a timestamp no Date can, or is larger than `maxBytes` (dead-letter it), and
   * RegistryError when the registry is unreachable (retry later: the record is fine).
   */
  async decode<T>(contract: Contract<T>, buffer: Buffer | null, maxBytes = Infinity): Promise<T> {
    if (buffer && buffer.length > maxBytes) throw new DecodeError('too-large', `${buffer.length} bytes, more than the ${maxBytes} this consumer accepts`);
    if (!buffer || buffer.length < HEADER_BYTES || buffer.readUInt8(0) !== MAGIC_BYTE) {
      throw new DecodeError('not-wire-format', 'not in the Confluent wire format (magic byte 0 + 4-byte schema id)');
    }
    const schemaId = buffer.readInt32BE(1);
    const resolver = await this.#resolver(contract, schemaId);
    let value: T;
    try {
      value = contract.type.fromBuffer(buffer.subarray(HEADER_BYTES), resolver) as T;
    } catch (error) {
      throw new DecodeError('malformed-avro', `Avro body does not match schema ${schemaId}: ${(error as Error).message}`);
    }
    // Valid Avro, but a time no reader could render (toISOString throws): refused here, so every consumer dead-letters it.
    const issues = timestampIssues(contract, value);
    if (issues.length > 0) throw new DecodeError('invalid', issues.map((issue) => `${issue.field}: ${issue.reason}`).join('; '));
    return value;
  }

  #resolver(contract: Contract<unknown>, schemaId: number): Promise<avro.Resolver> {
    const key = `${schemaId}:${contract.name}`;
    let resolver = this.#resolvers.get(key);
    if (!resolver) {
      resolver = this.#buildResolver(contract, schemaId);
      this.#resolvers.set(key, resolver);
      // A registry outage must not poison the cache: forget failures so the next record asks again.
      resolver.catch(() => this.#resolvers.delete(key));
    }
    return resolver;
  }

  async #buildResolver(contract: Contract<unknown>, schemaId: number): Promise<avro.Resolver> {
    const response = await this.#http('GET', `/schemas/ids/${schemaId}`);
    if (response.status === 404) throw new DecodeError('unknown-schema-id', `schema id ${schemaId} is not in the registry`);
    if (response.status >= 300) throw new RegistryError(`fetching schema ${schemaId}: ${response.message}`, response.status);
    const { schema, schemaType } = response.body as { schema: string; schemaType?: string };
    if (schemaType && schemaType !== 'AVRO') {
      throw new DecodeError('wrong-schema', `schema ${schemaId} is ${schemaType}, expected Avro ${contract.name}`);
    }
    const writer = avro.Type.forSchema(JSON.parse(schema) as avro.Schema);
    if (writer.name !== contract.name) {
      throw new DecodeError('wrong-schema', `schema ${schemaId} is ${writer.name ?? writer.typeName}, expected ${contract.name}`);
    }
    try {
      return contract.type.createResolver(writer);
    } catch (error) {
      throw new DecodeError('wrong-schema', `schema ${schemaId} cannot be read as ${contract.name}: ${(error as Error).message}`);
    }
  }

  /** One registry call; a timeout or connection failure is retried (every call here is idempotent). */
  async #http(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: unknown; message: string }> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const response = await request(`${this.#url}${path}`, {
          method,
          headers: { 'content-type': 'application/vnd.schemaregistry.v1+json', accept: 'application/vnd.schemaregistry.v1+json, application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          headersTimeout: 15_000,
          bodyTimeout: 15_000,
        });
        const text = await response.body.text();
        const parsed: unknown = text ? JSON.parse(text) : undefined;
        const message = (parsed as { message?: string } | undefined)?.message ?? text;
        return { status: response.statusCode, body: parsed, message };
      } catch (error) {
        if (attempt > this.#retries) {
          throw new RegistryError(`schema registry at ${this.#url} is unreachable (${(error as Error).message}); is it running? (npm run stack:status)`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
  }
}

