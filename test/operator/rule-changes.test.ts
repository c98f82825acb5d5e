import { describe, expect, it } from 'vitest';
import { withEnabled, withRotatedSecret } from '../../services/operator/rule-changes.ts';
import { contracts } from '../../schemas/index.ts';
import { rule } from '../fixtures/rules.ts';
import { valid } from '../helpers.ts';

describe('operator changes to a rule', () => {
  // They kept the rule's updatedAt, so the console, waiting for a copy "at least as new" as the one written, answered
  // an enable at once with the old, disabled copy.
  it('are new versions: the writer stamps them, never with the updatedAt of the copy they started from', () => {
    const current = valid(contracts.eventRule, { ...rule('r1', 'app'), updatedAt: 1_000 });
    for (const draft of [withEnabled(current, true), withEnabled(current, false), withRotatedSecret(current, 'whsec_new', 60_000)]) {
      expect(draft).not.toHaveProperty('updatedAt');
    }
  });
});
