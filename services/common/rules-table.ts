/** The event rules as a table (see table.ts): keyed by rule id, validated by checkRule. */
import { contracts, type EventRule } from '../../schemas/index.ts';
import { checkRule, REDACTED_RULE_FIELDS, redactRule } from './rules.ts';
import { KafkaTable, type TableChange, type TableOptions } from './table.ts';

export type RuleChange = TableChange<EventRule>;

export class RulesTable extends KafkaTable<EventRule> {
  constructor(options: Omit<TableOptions<EventRule>, 'name' | 'contract' | 'check' | 'idOf'>) {
    super({
      ...options,
      name: 'rules',
      contract: contracts.eventRule,
      check: (rule) => {
        const checked = checkRule(rule);
        return checked.ok ? { ok: true, value: checked.rule } : checked;
      },
      idOf: (rule) => rule.id,
      redact: { value: redactRule, what: REDACTED_RULE_FIELDS },
    });
  }
}
