// NATS subjects (src/runtime/subjects.ts): one token per name, whatever dots the name holds.
import { describe, expect, it } from 'vitest';
import { deliverySubject } from '../../../src/runtime/subjects.ts';

describe('deliverySubject', () => {
  it('puts region and node in one token each, dots escaped, so different names never share a subject', () => {
    expect(deliverySubject('us-east', 'node-1')).toBe('secbeat.v1.deliver.us-east.node-1');
    expect(deliverySubject('eu.west', 'a.b')).toBe('secbeat.v1.deliver.eu%2Ewest.a%2Eb');
    expect(deliverySubject('eu.west', 'a.b').split('.')).toHaveLength(5);
    expect(deliverySubject('a.b', 'c')).not.toBe(deliverySubject('a', 'b.c'));
  });
});
