/**
 * Writes ./types.ts from the .avsc contracts, so TypeScript types are derived from the schemas, never typed twice.
 * `npm run schemas:types` rewrites it; `--check` exits 1 when the file is stale (CI runs the same check as a test).
 * For each record it emits the decoded shape (every field present) and an `…Input` shape in which fields with a
 * schema default may be left out — what producers write.
 */
import avro from 'avsc';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allContractTypes } from './index.ts';

export const typesFile = fileURLToPath(new URL('./types.ts', import.meta.url));

export function renderTypes(roots: readonly avro.Type[] = allContractTypes): string {
  const declarations = new Map<string, string>();
  const visit = (type: avro.Type): void => {
    if (type instanceof avro.types.RecordType) {
      if (declarations.has(type.name!)) return;
      declarations.set(type.name!, ''); // reserve the slot first so declarations follow first use
      type.fields.forEach((field) => visit(field.type));
      declarations.set(type.name!, renderRecord(type));
    } else if (type instanceof avro.types.EnumType) {
      if (!declarations.has(type.name!)) {
        const symbols = type.symbols.map((symbol) => `'${symbol}'`).join(' | ');
        declarations.set(type.name!, `${docComment(type.doc, '')}export type ${shortName(type)} = ${symbols};\n`);
      }
    } else if (type instanceof avro.types.UnwrappedUnionType) {
      type.types.forEach(visit);
    } else if (type instanceof avro.types.ArrayType) {
      visit(type.itemsType);
    } else if (type instanceof avro.types.MapType) {
      visit(type.valuesType as avro.Type);
    }
  };
  roots.forEach(visit);
  return [
    '// Generated from schemas/*.avsc by `npm run schemas:types`. Do not edit: change the schema and regenerate.\n',
    ...declarations.values(),
  ].join('\n');
}

function renderRecord(type: avro.types.RecordType): string {
  const render = (input: boolean): string => {
    const fields = type.fields.map((field) => {
      const optional = input && field.defaultValue() !== undefined ? '?' : '';
      return `${docComment((field as { doc?: string }).doc, '  ')}  ${field.name}${optional}: ${tsType(field.type, input)};\n`;
    });
    const name = shortName(type) + (input ? 'Input' : '');
    const doc = input ? `/** ${shortName(type)} as a producer writes it: fields with a schema default may be left out. */\n` : docComment(type.doc, '');
    return `${doc}export interface ${name} {\n${fields.join('')}}\n`;
  };
  return `${render(false)}\n${render(true)}`;
}

function tsType(type: avro.Type, input: boolean): string {
  if (type instanceof avro.types.RecordType) return shortName(type) + (input ? 'Input' : '');
  if (type instanceof avro.types.EnumType) return shortName(type);
  if (type instanceof avro.types.UnwrappedUnionType) return type.types.map((branch) => tsType(branch, input)).join(' | ');
  if (type instanceof avro.types.ArrayType) return `Array<${tsType(type.itemsType, input)}>`;
  if (type instanceof avro.types.MapType) return `Record<string, ${tsType(type.valuesType as avro.Type, input)}>`;
  switch (type.typeName) {
    case 'null': return 'null';
    case 'boolean': return 'boolean';
    case 'string': return 'string';
    case 'int': case 'long': case 'float': case 'double': return 'number';
    case 'bytes': case 'fixed': return 'Buffer';
    default: throw new Error(`schemas: no TypeScript mapping for Avro type ${type.typeName}`);
  }
}

const shortName = (type: avro.Type): string => type.name!.split('.').pop()!;

function docComment(doc: string | undefined, indent: string): string {
  return doc ? `${indent}/** ${doc} */\n` : '';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fresh = renderTypes();
  if (process.argv.includes('--check')) {
    if (readFileSync(typesFile, 'utf8') !== fresh) {
      console.error('schemas/types.ts is stale: run `npm run schemas:types`.');
      process.exit(1);
    }
  } else {
    writeFileSync(typesFile, fresh);
    console.log(`wrote ${typesFile}`);
  }
}
