import { describe, expect, it } from 'vitest';
import { deliveryId } from '../../services/common/delivery-id.ts';

describe('delivery id', () => {
  // Receivers de-duplicate on it across versions of this service: the derivation may be made faster, never different.
  it('is the same for (event, rule) as every earlier version computed it', () => {
    expect(deliveryId('86afca34-4cb1-4859-b1c6-11f398f55a4b', 'deploys')).toBe('msg_70fbSXM0vraH7UJjDLwIzCKEVwS');
    expect(deliveryId('évènement-1', 'règle')).toBe('msg_rPAcLZ7kWANvaxgHlZ5wJwpBC5z');
  });

  it('differs when the event or the rule does, including at the separator', () => {
    expect(deliveryId('a', 'bc')).not.toBe(deliveryId('ab', 'c'));
    expect(deliveryId('e', 'r1')).not.toBe(deliveryId('e', 'r2'));
  });
});
