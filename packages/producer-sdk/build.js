// Builds the package from the repository's own sources, so there is one SDK, not a copy: tsc compiles
// services/producer/publisher.ts and what it imports (JavaScript + declarations) into dist/, and the Avro contracts
// are copied beside the compiled schemas module, which reads them when it loads. Plain JavaScript: it runs on any Node.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const schemas = join(here, '../../schemas');
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc');

rmSync(join(here, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
for (const file of readdirSync(schemas).filter((name) => name.endsWith('.avsc'))) cpSync(join(schemas, file), join(here, 'dist/schemas', file));
