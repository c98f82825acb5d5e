/**
 * The broker's server.properties, which the JVM broker and the Kafka container share (stack/index.ts kafkaProperties):
 * only where listeners bind and what they advertise differ. The container's side cannot start here (no container
 * engine), so what it is told is checked as text.
 */
import { describe, expect, it } from 'vitest';
import { kafkaProperties, stackSettings } from '../../stack/index.ts';

const settings = stackSettings({ STACK_DIR: '/tmp/unused', STACK_KAFKA_PORT: '41001', STACK_CONTROLLER_PORT: '41002', STACK_KAFKA_SASL_SSL_PORT: '41003', STACK_KAFKA_MTLS_PORT: '41004' });
const tls = { keystore: '/opt/stack/broker.pem', truststore: '/opt/stack/ca.crt', plainPassword: 'p' };
const property = (text: string, name: string) => new RegExp(`^${name.replaceAll('.', '\\.')}=(.*)$`, 'm').exec(text)?.[1];

describe('kafkaProperties', () => {
  it('the JVM broker: every listener on loopback, brokers talk over the plaintext one', () => {
    const text = kafkaProperties(settings, '/data', tls);
    expect(property(text, 'listeners')).toBe('PLAINTEXT://127.0.0.1:41001,SASL_SSL://127.0.0.1:41003,MTLS://127.0.0.1:41004,CONTROLLER://127.0.0.1:41002');
    expect(property(text, 'advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:41001,SASL_SSL://127.0.0.1:41003,MTLS://127.0.0.1:41004');
    expect(property(text, 'inter.broker.listener.name')).toBe('PLAINTEXT');
  });

  it('the container: every interface inside, the host address for clients, its alias for the network, its own files', () => {
    const text = kafkaProperties(settings, '/var/lib/kafka/data', tls, { bind: '0.0.0.0', advertised: '127.0.0.1', internal: { alias: 'kafka', port: 9092 } });
    expect(property(text, 'listeners')).toBe('PLAINTEXT://0.0.0.0:41001,SASL_SSL://0.0.0.0:41003,MTLS://0.0.0.0:41004,INTERNAL://0.0.0.0:9092,CONTROLLER://0.0.0.0:41002');
    expect(property(text, 'advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:41001,SASL_SSL://127.0.0.1:41003,MTLS://127.0.0.1:41004,INTERNAL://kafka:9092');
    expect(property(text, 'inter.broker.listener.name')).toBe('INTERNAL');
    expect(property(text, 'controller.quorum.voters')).toBe('1@127.0.0.1:41002');
    expect(property(text, 'listener.security.protocol.map')).toContain('INTERNAL:PLAINTEXT');
    expect(property(text, 'ssl.keystore.location')).toBe('/opt/stack/broker.pem');
    expect(property(text, 'ssl.truststore.location')).toBe('/opt/stack/ca.crt');
    expect(property(text, 'log.dirs')).toBe('/var/lib/kafka/data');
  });
});
