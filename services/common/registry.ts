/**
 * Avro over a Confluent-compatible schema registry (Confluent Schema Registry, Apicurio's /apis/ccompat/v7, …), through
 * @kafkajs/confluent-schema-registry: it registers, looks schemas up by id and by subject (schema references included),
 * caches them, and sends every request through one HTTP agent (the CA), with basic auth, a timeout and retries.
 * Records use the Confluent wire format: magic byte 0, the 4-byte schema id, then the Avro binary body.
 * Decoding reads with the writer's schema and resolves into the reader's contract, so a producer on a newer
 * (BACKWARD-compatible) schema never breaks an older consumer, and a record of any other schema is refused.
 */
import { readFileSync } from 'node:fs';
import { setTimeout } from 'node:timers/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import forge, { type Response as MappersmithResponse } from 'mappersmith';
import BasicAuthMiddleware from 'mappersmith/middleware/basic-auth';
import TimeoutMiddleware from 'mappersmith/middleware/timeout';
import { timestampIssues, toBinary, type Contract } from '../../schemas/index.ts';
import type { ConnectionConfig } from './config.ts';
import { CERTIFICATE_ERROR, CLIENT_CERTIFICATE_REFUSED } from './tls-errors.ts';

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
  /** PEM client certificate and unencrypted key, for a registry behind mutual TLS. */
  registryCertificate?: { cert: string; key: string };
}

/** The registry connection the settings describe (config.ts has checked that the CA file is readable PEM). */
export function registryConnection(config: Pick<ConnectionConfig, Extract<keyof ConnectionConfig, `SCHEMA_REGISTRY_${string}`>>): RegistryConnection {
  const { SCHEMA_REGISTRY_URL: registryUrl, SCHEMA_REGISTRY_USERNAME: username, SCHEMA_REGISTRY_PASSWORD: password, SCHEMA_REGISTRY_CA_FILE: caFile } = config;
  const { SCHEMA_REGISTRY_CERT_FILE: certFile, SCHEMA_REGISTRY_KEY_FILE: keyFile } = config;
  return {
    registryUrl,
    ...(username !== undefined && password !== undefined ? { registryAuth: { username, password } } : {}),
    ...(caFile !== undefined ? { registryCa: readFileSync(caFile, 'utf8') } : {}),
    ...(certFile !== undefined && keyFile !== undefined ? { registryCertificate: { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') } } : {}),
  };
}

/** Names this client in the registry's logs (User-Agent) and prefixes the library's error messages. */
const CLIENT_ID = 'workflow-webhooks';

/** The library's text for an answer it could not read as JSON, or for a request that got no answer at all. */
const NOT_JSON = /^Error, status \d+: ?/;
/** A socket error or the library's timeout: the registry never answered (the library reports these as HTTP 400). */
const NO_ANSWER = /^Error, status 400: (?:(?:\w+ )?E[A-Z]{3,}\b|socket hang up|Timeout \(\d+ms\)|Client network socket disconnected)/;

/** What the library rejects with: its ResponseError (an HTTP answer, or none) or one of its own errors. */
interface LibraryError { name: string; message: string; status?: number; url?: string }

/** A mappersmith answer that failed (HTTP 4xx/5xx, or none), in the shape of the library's ResponseError. */
function answerError(answer: MappersmithResponse): LibraryError {
  const data = answer.data<{ message?: string } | string | null>();
  const message = typeof data === 'object' && data?.message ? data.message : `Error, status ${answer.status()}: ${answer.rawData() ?? ''}`;
  return { name: 'ResponseError', message, status: answer.status() };
}

type SubjectsApi = ReturnType<typeof subjectsApi>;

export class SchemaRegistryClient {
  readonly #url: string;
  readonly #authenticated: boolean;
  readonly #registry: SchemaRegistry;
  /** What the library has no call for (listing and deleting subjects), on the same agent, auth and timeout. */
  readonly #subjects: SubjectsApi;
  /** Resolvers per writer schema id and reader contract: built once, reused for every record. */
  readonly #resolvers = new Map<string, Promise<avro.Resolver>>();

  /**
   * `retries`: how often a request that failed without an answer (or with a 5xx) is sent again;
   * `requestTimeoutMs`: how long one request may go without an answer before it is abandoned.
   */
  constructor({ registryUrl, registryAuth, registryCa, registryCertificate }: RegistryConnection, { retries = 3, requestTimeoutMs = 15_000 }: { retries?: number; requestTimeoutMs?: number } = {}) {
    this.#url = registryUrl.replace(/\/+$/, '');
    this.#authenticated = registryAuth !== undefined;
    const agent = this.#url.startsWith('https:') ? new HttpsAgent({ keepAlive: true, ca: registryCa, ...registryCertificate }) : new HttpAgent({ keepAlive: true });
    this.#registry = new SchemaRegistry({
      host: this.#url,
      clientId: CLIENT_ID,
      agent,
      ...(registryAuth ? { auth: registryAuth } : {}),
      // Every call here is idempotent (a lookup, or registering a schema that then gets the same id), so POSTs are
      // retried too, and so is a request that timed out. All the fields are given: the library merges them into a
      // default shared by every client.
      retry: {
        retries, initialRetryTimeInSecs: 0.5, maxRetryTimeInSecs: 5, multiplier: 2, factor: 0.2, enableRetry: () => true,
        validateRetry: (response) => response.status() >= 500 || response.error()?.name === 'TimeoutError',
      },
      // The cast: the library's types are mappersmith's CommonJS declarations, this module imports its ESM ones.
      middlewares: [TimeoutMiddleware(requestTimeoutMs) as never],
    });
    this.#subjects = subjectsApi(this.#url, agent, registryAuth, requestTimeoutMs);
  }

  /**
   * Registers a contract under `subject` with BACKWARD compatibility (or the given level) and returns its id.
   * An already registered schema is only looked up: services starting together then read, not write, and credentials
   * that may only read the registry suffice once setup has registered the contracts.
   */
  async register(subject: string, schema: object, compatibility: Compatibility = 'BACKWARD'): Promise<number> {
    const confluentSchema = { type: SchemaType.AVRO, schema: JSON.stringify(schema) } as const;
    try {
      return await this.#registry.getRegistryIdBySchema(subject, confluentSchema);
    } catch (error) {
      // The library turns the registry's 404 (no such subject, or not this schema in it) into its own error.
      if ((error as LibraryError).name !== 'ConfluentSchemaRegistryError') throw this.#failure(`looking up ${subject}`, error);
    }
    for (let attempt = 1; ; attempt += 1) {
      try {
        return (await this.#registry.register(confluentSchema, { subject, compatibility: COMPATIBILITY[compatibility] })).id;
      } catch (error) {
        const { status, url } = error as LibraryError;
        // Two callers setting up at once (two installs, `npm start` beside `npm run setup`): both find no rule, and
        // Apicurio answers the slower one's create 409 "rule already exists"; registering again finds the rule.
        if (status === 409 && /^put /i.test(url ?? '') && attempt === 1) continue;
        // The other caller's schema is in but its BACKWARD rule not yet (Apicurio reports NONE meanwhile, and the
        // library refuses a level that differs): wait for that caller's next request.
        if ((error as LibraryError).name === 'ConfluentSchemaRegistryCompatibilityError' && attempt <= 10) {
          await setTimeout(100 * attempt);
          continue;
        }
        const reason = status === 409 ? 'the registry refused an incompatible schema: ' : '';
        throw this.#failure(`registering ${subject}`, error, reason);
      }
    }
  }

  /**
   * Deletes every subject whose name starts with `prefix` (a test run's or a benchmark's topics), soft then
   * permanently as the Confluent API requires, and returns their names. Their schema ids then no longer resolve: only
   * for subjects whose topics are gone too.
   */
  async deleteSubjects(prefix: string): Promise<string[]> {
    if (!prefix) throw new RegistryError('refusing to delete subjects without a prefix: that would be every subject');
    const listed = await this.#subjects.Subjects.list().catch((answer: MappersmithResponse) => { throw this.#failure('listing subjects', answerError(answer)); });
    const subjects = (listed.data() as string[]).filter((subject) => subject.startsWith(prefix));
    // A subject another one refers to (schema references) is refused until the referring one is gone: such refusals
    // are tried again after the others, as long as each pass deletes something.
    let remaining = subjects;
    while (remaining.length > 0) {
      const refused: Array<{ subject: string; error: RegistryError }> = [];
      for (const subject of remaining) {
        for (const permanent of [false, true]) {
          // 404: already gone (another cleanup, or a registry that deletes permanently at once).
          const error = await this.#subjects.Subjects.delete({ subject, ...(permanent ? { permanent } : {}) })
            .then(() => undefined, (answer: MappersmithResponse) => answerError(answer));
          if (error && error.status !== 404) {
            refused.push({ subject, error: this.#failure(`deleting ${subject}`, error) });
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
    // The library's encode() is asynchronous and looks the schema up for every record; this one is synchronous.
    return { subject, schemaId, encode: (value) => toBinary(contract, value, header) };
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

  /**
   * The library's decode() parses the reader's schema and builds a resolver for every record, and keeps no verdict on
   * a schema it cannot read; these resolvers are built once per writer id, and such a verdict is kept too.
   */
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
    let writer: unknown;
    try {
      writer = await this.#registry.getSchema(schemaId);
    } catch (error) {
      const { name, message, status, url } = error as LibraryError;
      if (status === 404 && url?.includes('/schemas/ids/')) throw new DecodeError('unknown-schema-id', `schema id ${schemaId} is not in the registry`);
      // The registry accepted it, but no record of it can be read here (avsc refuses it, or a subject version it refers
      // to is gone): bad data, not an outage to wait out.
      if (name === 'ConfluentSchemaRegistryArgumentError') throw new DecodeError('unreadable-schema', `schema ${schemaId} cannot be read: ${message}`);
      if (status === 404) throw new DecodeError('unreadable-schema', `schema ${schemaId} refers to a schema the registry does not have (${url})`);
      throw this.#failure(`fetching schema ${schemaId}`, error);
    }
    if (!avro.Type.isType(writer)) throw new DecodeError('wrong-schema', `schema ${schemaId} is not Avro, expected Avro ${contract.name}`);
    const type = writer as avro.Type;
    if (type.name !== contract.name) {
      throw new DecodeError('wrong-schema', `schema ${schemaId} is ${type.name ?? type.typeName}, expected ${contract.name}`);
    }
    try {
      return contract.type.createResolver(type);
    } catch (error) {
      throw new DecodeError('wrong-schema', `schema ${schemaId} cannot be read as ${contract.name}: ${(error as Error).message}`);
    }
  }

  /**
   * A failed registry call as an error that says what to do. Refused credentials and an untrusted certificate need a
   * setting changed, and the error names it; no error quotes a credential.
   */
  #failure(doing: string, error: unknown, reason = ''): RegistryError {
    const { status, message } = error as LibraryError;
    const detail = message.startsWith(`${CLIENT_ID} - `) ? message.slice(CLIENT_ID.length + 3) : message;
    if (status === 401 || status === 403) {
      const which = this.#authenticated ? 'refused the credentials of SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD' : 'needs credentials: set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD';
      return new RegistryError(`schema registry at ${this.#url} ${which} (HTTP ${status})`, status);
    }
    // A registry's own refusal (its JSON message): said as it is.
    if (!NOT_JSON.test(detail)) return new RegistryError(`${doing}: ${reason}${detail}`, status);
    const seen = detail.replace(NOT_JSON, '');
    // No answer: the TLS handshake failed, or the socket (a timeout).
    if (status === 400 && CLIENT_CERTIFICATE_REFUSED.test(seen)) {
      return new RegistryError(`schema registry at ${this.#url} refused the client certificate (mutual TLS); set SCHEMA_REGISTRY_CERT_FILE and SCHEMA_REGISTRY_KEY_FILE to a certificate its CA trusts (${seen})`);
    }
    if (status === 400 && CERTIFICATE_ERROR.test(seen) && !seen.includes('<')) {
      return new RegistryError(`schema registry at ${this.#url}: its TLS certificate is not trusted (${seen}); set SCHEMA_REGISTRY_CA_FILE to the CA that signed it`);
    }
    if (NO_ANSWER.test(detail)) return new RegistryError(`schema registry at ${this.#url} is unreachable (${seen}); is it running? (npm run stack:status)`);
    // Not the registry answering (a proxy's error page, plain HTTP sent to an HTTPS port, a wrong path).
    return new RegistryError(`${doing}: HTTP ${status}, not a schema registry's answer: ${seen.replace(/<[^>]*>|\s+/g, ' ').trim().slice(0, 120)}`, status);
  }
}

/** Listing and deleting subjects, which the library has no call for, through the library's HTTP client (mappersmith). */
function subjectsApi(host: string, agent: HttpAgent, auth: RegistryConnection['registryAuth'], timeoutMs: number) {
  return forge({
    clientId: CLIENT_ID,
    host,
    ignoreGlobalMiddleware: true,
    middleware: [TimeoutMiddleware(timeoutMs), ...(auth ? [BasicAuthMiddleware(auth)] : [])],
    gatewayConfigs: { HTTP: { configure: () => ({ agent }) } },
    resources: {
      Subjects: {
        list: { method: 'get', path: '/subjects' },
        delete: { method: 'delete', path: '/subjects/{subject}' },
      },
    },
  });
}
