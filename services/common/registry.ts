/**
 * Avro over a Confluent-compatible schema registry (Confluent Schema Registry, Apicurio's /apis/ccompat/v7, …).
 * Records use the Confluent wire format: magic byte 0, the 4-byte schema id, then the Avro binary body.
 * Decoding reads with the writer's schema and resolves into the reader's contract, so a producer on a newer
 * (BACKWARD-compatible) schema never breaks an older consumer, and a record of any other schema is refused.
 */
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { Agent, request, type Dispatcher } from 'undici';
import { timestampIssues, type Contract } from '../../schemas/index.ts';
import type { ConnectionConfig } from './config.ts';

const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

/** Why a record cannot be used; consumers dead-letter it with this reason. */
export type DecodeFailure = 'not-wire-format' | 'unknown-schema-id' | 'wrong-schema' | 'unreadable-schema' | 'malformed-avro' | 'unknown-event-type' | 'too-large' | 'invalid';

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

/** Where the registry is and how to authenticate to it: what the producer SDK takes and registryConnection() builds. */
export interface RegistryConnection {
  registryUrl: string;
  /** HTTP basic auth (Confluent Cloud API key + secret, or a proxy's user). */
  registryAuth?: { username: string; password: string };
  /** PEM CA bundle that signed the registry's HTTPS certificate, when it is not one the system trusts. */
  registryCa?: string;
}

/** The registry connection the settings describe (config.ts has checked that the CA file is readable PEM). */
export function registryConnection(config: Pick<ConnectionConfig, Extract<keyof ConnectionConfig, `SCHEMA_REGISTRY_${string}`>>): RegistryConnection {
  const { SCHEMA_REGISTRY_URL: registryUrl, SCHEMA_REGISTRY_USERNAME: username, SCHEMA_REGISTRY_PASSWORD: password, SCHEMA_REGISTRY_CA_FILE: caFile } = config;
  return {
    registryUrl,
    ...(username !== undefined && password !== undefined ? { registryAuth: { username, password } } : {}),
    ...(caFile !== undefined ? { registryCa: readFileSync(caFile, 'utf8') } : {}),
  };
}

const CERTIFICATE_ERROR = /certificate|self[- ]signed|issuer|unable to verify/i;

export class SchemaRegistryClient {
  readonly #url: string;
  /** Resolvers per writer schema id and reader contract: built once, reused for every record. */
  readonly #resolvers = new Map<string, Promise<avro.Resolver>>();

  readonly #retries: number;
  readonly #authorization: string | undefined;
  readonly #dispatcher: Dispatcher | undefined;

  constructor({ registryUrl, registryAuth, registryCa }: RegistryConnection, { retries = 3 }: { retries?: number } = {}) {
    this.#url = registryUrl.replace(/\/+$/, '');
    this.#retries = retries;
    this.#authorization = registryAuth && `Basic ${Buffer.from(`${registryAuth.username}:${registryAuth.password}`).toString('base64')}`;
    this.#dispatcher = registryCa === undefined ? undefined : new Agent({ connect: { ca: registryCa } });
  }

  /** Sets the subject's compatibility level; the registry then refuses any new version that breaks it. */
  async setCompatibility(subject: string, level: Compatibility): Promise<void> {
    const put = () => this.#http('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
    let response = await put();
    // Two callers setting up at once (two installs, `npm start` beside `npm run setup`): Apicurio answers the slower
    // one's create 409 "rule already exists"; a second PUT finds the rule and updates it.
    if (response.status === 409) response = await put();
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
    // Registering the same schema again returns the same id, so a retried request is harmless.
    const registered = await this.#http('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { ...body, schemaType: 'AVRO' });
    if (registered.status < 300) return (registered.body as { id: number }).id;
    const reason = registered.status === 409 ? 'the registry refused an incompatible schema: ' : '';
    throw new RegistryError(`registering ${subject}: ${reason}${registered.message}`, registered.status);
  }

  /**
   * Deletes every subject whose name starts with `prefix` (a test run's or a benchmark's topics), soft then
   * permanently as the Confluent API requires, and returns their names. Their schema ids then no longer resolve: only
   * for subjects whose topics are gone too.
   */
  async deleteSubjects(prefix: string): Promise<string[]> {
    if (!prefix) throw new RegistryError('refusing to delete subjects without a prefix: that would be every subject');
    const listed = await this.#http('GET', '/subjects');
    if (listed.status >= 300) throw new RegistryError(`listing subjects: ${listed.message}`, listed.status);
    const subjects = (listed.body as string[]).filter((subject) => subject.startsWith(prefix));
    // A subject another one refers to (schema references) is refused until the referring one is gone: such refusals
    // are tried again after the others, as long as each pass deletes something.
    let remaining = subjects;
    while (remaining.length > 0) {
      const refused: Array<{ subject: string; error: RegistryError }> = [];
      for (const subject of remaining) {
        for (const query of ['', '?permanent=true']) {
          const deleted = await this.#http('DELETE', `/subjects/${encodeURIComponent(subject)}${query}`);
          // 404: already gone (another cleanup, or a registry that deletes permanently at once).
          if (deleted.status >= 300 && deleted.status !== 404) {
            refused.push({ subject, error: new RegistryError(`deleting ${subject}: ${deleted.message}`, deleted.status) });
            break;
          }
        }
      }
      if (refused.length === remaining.length) throw refused[0]!.error;
      remaining = refused.map(({ subject }) => subject);
    }
    return subjects;
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
   * Throws DecodeError for input that can never be decoded (its writer schema included), holds a timestamp no Date can, or is larger than `maxBytes` (dead-letter it), and
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
      // A schema's text never changes under its id, so what it says about it (unreadable, another record) is kept and
      // the next record of that id is refused without a request. A registry outage must not poison the cache, and
      // neither may an id it does not know right now (an emptied registry whose contracts are registered again).
      resolver.catch((error: unknown) => {
        if (!(error instanceof DecodeError) || error.reason === 'unknown-schema-id') this.#resolvers.delete(key);
      });
    }
    return resolver;
  }

  async #buildResolver(contract: Contract<unknown>, schemaId: number): Promise<avro.Resolver> {
    const response = await this.#http('GET', `/schemas/ids/${schemaId}`);
    if (response.status === 404) throw new DecodeError('unknown-schema-id', `schema id ${schemaId} is not in the registry`);
    if (response.status >= 300) throw new RegistryError(`fetching schema ${schemaId}: ${response.message}`, response.status);
    const { schema, schemaType, references } = response.body as { schema: string; schemaType?: string; references?: unknown[] };
    if (schemaType && schemaType !== 'AVRO') {
      throw new DecodeError('wrong-schema', `schema ${schemaId} is ${schemaType}, expected Avro ${contract.name}`);
    }
    let writer: avro.Type;
    try {
      writer = avro.Type.forSchema(JSON.parse(schema) as avro.Schema);
    } catch (error) {
      // The registry accepted it, but no record of it can be read here: bad data, not an outage to wait out.
      const why = references?.length ? ' (it refers to other subjects, schema references, which this reader does not resolve)' : '';
      throw new DecodeError('unreadable-schema', `schema ${schemaId} cannot be read${why}: ${(error as Error).message}`);
    }
    if (writer.name !== contract.name) {
      throw new DecodeError('wrong-schema', `schema ${schemaId} is ${writer.name ?? writer.typeName}, expected ${contract.name}`);
    }
    try {
      return contract.type.createResolver(writer);
    } catch (error) {
      throw new DecodeError('wrong-schema', `schema ${schemaId} cannot be read as ${contract.name}: ${(error as Error).message}`);
    }
  }

  /**
   * One registry call; a timeout or connection failure is retried (every call here is idempotent). Refused
   * credentials and an untrusted certificate are not: they need a setting changed, and the error names it.
   */
  async #http(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: unknown; message: string }> {
    for (let attempt = 1; ; attempt += 1) {
      let response: Dispatcher.ResponseData;
      try {
        response = await request(`${this.#url}${path}`, {
          method,
          headers: {
            'content-type': 'application/vnd.schemaregistry.v1+json',
            accept: 'application/vnd.schemaregistry.v1+json, application/json',
            ...(this.#authorization ? { authorization: this.#authorization } : {}),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          headersTimeout: 15_000,
          bodyTimeout: 15_000,
          ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
        });
      } catch (error) {
        const seen = [(error as Error).message, ((error as Error).cause as Error | undefined)?.message].filter(Boolean).join(': ');
        if (CERTIFICATE_ERROR.test(seen)) {
          throw new RegistryError(`schema registry at ${this.#url}: its TLS certificate is not trusted (${seen}); set SCHEMA_REGISTRY_CA_FILE to the CA that signed it`);
        }
        if (attempt > this.#retries) {
          throw new RegistryError(`schema registry at ${this.#url} is unreachable (${seen}); is it running? (npm run stack:status)`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
        continue;
      }
      const text = await response.body.text();
      if (response.statusCode === 401 || response.statusCode === 403) {
        const which = this.#authorization ? 'refused the credentials of SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD' : 'needs credentials: set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD';
        throw new RegistryError(`schema registry at ${this.#url} ${which} (HTTP ${response.statusCode})`, response.statusCode);
      }
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // Not the registry answering (a proxy's error page, plain HTTP sent to an HTTPS port, a wrong path).
        return { status: response.statusCode, body: undefined, message: `HTTP ${response.statusCode}, not a schema registry's answer: ${text.replace(/<[^>]*>|\s+/g, ' ').trim().slice(0, 120)}` };
      }
      const message = (parsed as { message?: string } | undefined)?.message ?? text;
      return { status: response.statusCode, body: parsed, message };
    }
  }
}

