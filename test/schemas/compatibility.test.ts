import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { contracts, validate, type Contract } from '../../schemas/index.ts';
import { registryConnection, DecodeError, RegistryError, SchemaRegistryClient } from '../../services/common/registry.ts';
import { testCluster } from '../helpers.ts';

const cluster = testCluster('compat');
const registry = new SchemaRegistryClient(registryConnection(cluster));
type Fields = Array<{ name: string; type: unknown; default?: unknown }>;

/** The real WorkflowEvent schema with its fields changed, as the next version of the contract might be. */
function evolvedEvent(change: (fields: Fields) => Fields): Contract<Record<string, unknown>> {
  const schema = structuredClone(contracts.workflowEvent.schema) as { fields: Fields };
  schema.fields = change(schema.fields);
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
});
