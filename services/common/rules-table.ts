/**
 * The event rules as a table (see table.ts): keyed by rule id, validated by checkRule's checks. Services that need only
 * part of each rule (the matcher) say what to keep, its updatedAt included: that is the version conditional writes
 * (RuleWriter.change) are based on. The others keep whole rules.
 */
import { contracts, type EventRule } from '../../schemas/index.ts';
import { REDACTED_RULE_FIELDS, redactRule, ruleIssues } from './rules.ts';
import { KafkaTable, type TableChange, type TableOptions } from './table.ts';

export type RuleChange<S = EventRule> = TableChange<S>;

export class RulesTable<S extends Pick<EventRule, 'updatedAt'> = EventRule> extends KafkaTable<EventRule, S> {
  constructor(options: Omit<TableOptions<EventRule, S>, 'name' | 'contract' | 'check' | 'idOf' | 'versionOf'>) {
    super({
      ...options,
      name: 'rules',
      contract: contracts.eventRule,
      // Decoded values have the contract's shape already (the codec refuses what does not): only the checks beyond it.
      check: (rule) => {
        const issues = ruleIssues(rule);
        return issues.length === 0 ? { ok: true, value: rule } : { ok: false, issues };
      },
      idOf: (rule) => rule.id,
      versionOf: (rule) => rule.updatedAt,
      redact: { value: redactRule, what: REDACTED_RULE_FIELDS },
    });
  }
}
