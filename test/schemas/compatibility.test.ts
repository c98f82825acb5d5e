import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { contracts, validate, type Contract } from '../../schemas/index.ts';
import { registryConnection, DecodeError, RegistryError, SchemaRegistryClient } from '../../services/common/registry.ts';
import { testCluster } from '../helpers.ts';

const cluster = testCluster('compat');
const registry = new SchemaRegistryClient(registryConnection(cluster));
type Fields = Array<{ name: string; type: unknown; default?: unknown }>;

/** The real WorkflowEvent schema with its fields changed, as the next version of the contract might be. */
function evolvedSchema(change: (fields: Fields) => Fields): { fields: Fields } {
  const schema = structuredClone(contracts.workflowEvent.schema) as { fields: Fields };
  schema.fields = change(schema.fields);
  return schema;
}

function evolvedEvent(change: (fields: Fields) => Fields): Contract<Record<string, unknown>> {
  const schema = evolvedSchema(change);
  return { name: contracts.workflowEvent.name, type: avro.Type.forSchema(schema as avro.Schema), schema };
}

describe('the registry enforces BACKWARD compatibility (real Apicurio, Confluent API)', () => {
  const subject = `${cluster.TOPIC_PREFIX}workflow-events-value`;

  it('refuses an incompatible change and accepts a compatible one', async () => {
    const v1 = await registry.register(subject, contracts.workflowEvent.schema);
    await expect(registry.register(subject, contracts.workflowEvent.schema)).resolves.toBe(v1);

    const required = evolvedEvent((fields) => [...fields, { name: 'region', type: 'string' }]);
    await expect(registry.register(subject, required.schema)).rejects.toThrow(RegistryError);
    await expect(registry.register(subject, required.schema)).rejects.toThrow(/incompatible/i);

    const optional = evolvedEvent((fields) => [...fields, { name: 'region', type: ['null', 'string'], default: null }]);
    const v2 = await registry.register(subject, optional.schema);
    expect(v2).not.toBe(v1);
  });

  it('lets an old reader decode what a newer producer wrote, and refuses records of another schema', async () => {
    const newer = evolvedEvent((fields) => [...fields, { name: 'region', type: ['null', 'string'], default: null }]);
    const writer = await registry.codec(`${cluster.TOPIC_PREFIX}newer-value`, newer);
    const event = validate(contracts.workflowEvent, { eventId: 'e1', type: 'task_started', occurredAt: 5, application: { id: 'a' } });
    if (!event.ok) throw new Error('fixture is invalid');
    const written = writer.encode({ ...event.value, region: 'eu' });
    const read = await registry.decode(contracts.workflowEvent, written);
    expect(read).toMatchObject({ eventId: 'e1', type: 'task_started' });
    expect(read).not.toHaveProperty('region');

    const log = await registry.codec(`${cluster.TOPIC_PREFIX}log-value`, contracts.deliveryLog);
    const entry = validate(contracts.deliveryLog, { deliveryId: 'd', attempt: 1, ruleId: 'r', eventId: 'e', eventType: 'task_started', outcome: 'delivered', attemptedAt: 1 });
    if (!entry.ok) throw new Error('fixture is invalid');
    const other = log.encode(entry.value);
    await expect(registry.decode(contracts.workflowEvent, other)).rejects.toMatchObject({ reason: 'wrong-schema' });
    await expect(registry.decode(contracts.workflowEvent, Buffer.from('{"not":"avro"}'))).rejects.toMatchObject({ reason: 'not-wire-format' });
    const unknownId = Buffer.from(written);
    unknownId.writeInt32BE(987_654, 1);
    await expect(registry.decode(contracts.workflowEvent, unknownId)).rejects.toMatchObject({ reason: 'unknown-schema-id' });
    await expect(registry.decode(contracts.workflowEvent, written.subarray(0, 12))).rejects.toBeInstanceOf(DecodeError);
  });

  it("reads what @kafkajs/confluent-schema-registry's serializer writes and the other way round, on the same ids", async () => {
    const confluent = new SchemaRegistry({ host: cluster.SCHEMA_REGISTRY_URL });
    const interop = `${cluster.TOPIC_PREFIX}interop-value`;
    const codec = await registry.codec(interop, contracts.workflowEvent);
    await expect(confluent.getLatestSchemaId(interop)).resolves.toBe(codec.schemaId);
    await expect(confluent.getRegistryId(interop, 1)).resolves.toBe(codec.schemaId);
    const event = validate(contracts.workflowEvent, { eventId: 'interop-1', type: 'workflow_completed', occurredAt: 7, application: { id: 'a' }, workflowExecutionId: 'run-1' });
    if (!event.ok) throw new Error('fixture is invalid');
    const theirs = await confluent.encode(codec.schemaId, event.value);
    expect(theirs).toEqual(codec.encode(event.value));
    await expect(registry.decode(contracts.workflowEvent, theirs)).resolves.toEqual(event.value);
    await expect(confluent.decode(codec.encode(event.value))).resolves.toEqual(event.value);
  });

  it('reads a writer schema that refers to a type of another subject (Confluent schema references)', async () => {
    const confluent = new SchemaRegistry({ host: cluster.SCHEMA_REGISTRY_URL });
    const extra = { type: 'record', name: 'Extra', namespace: 'com.example', fields: [{ name: 'note', type: 'string' }] } as const;
    const extraSubject = `${cluster.TOPIC_PREFIX}extra-value`;
    await confluent.register({ type: SchemaType.AVRO, schema: JSON.stringify(extra) }, { subject: extraSubject });
    // The next version of the event as another team might write it: one more field, of a type another subject holds.
    const referencing = evolvedSchema((fields) => [...fields, { name: 'extra', type: ['null', 'com.example.Extra'], default: null }]);
    const { id } = await confluent.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(referencing), references: [{ name: 'com.example.Extra', subject: extraSubject, version: 1 }] },
      { subject: `${cluster.TOPIC_PREFIX}referencing-value` },
    );
    const writer = evolvedEvent((fields) => [...fields, { name: 'extra', type: ['null', extra], default: null }]);
    const event = validate(contracts.workflowEvent, { eventId: 'e2', type: 'task_started', occurredAt: 5, application: { id: 'a' } });
    if (!event.ok) throw new Error('fixture is invalid');
    const header = Buffer.from([0, 0, 0, 0, 0]);
    header.writeInt32BE(id, 1);
    const written = Buffer.concat([header, writer.type.toBuffer({ ...event.value, extra: { note: 'from elsewhere' } })]);
    await expect(registry.decode(contracts.workflowEvent, written)).resolves.toEqual(event.value);
  });
});
