/**
 * Replaces one method of one of kafkajs's own modules (kafkajs is no longer released: tulios/kafkajs#1603), and only
 * when its source is exactly the one the replacement was written against: another kafkajs's method is left as it is.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** The path of a module inside kafkajs's package (`src/protocol/encoder.js`, say). */
export const kafkajsModule = (path: string): string => join(dirname(require.resolve('kafkajs')), path);

/**
 * Puts `replacement` in place of the class's prototype method `name` exported by kafkajs's module `path`, if the
 * method's source hashes to `knownSha256`. Whether the replacement is in place.
 */
export function replaceKafkajsMethod(path: string, name: string, knownSha256: string, replacement: (...args: never[]) => unknown): boolean {
  const file = kafkajsModule(path);
  if (!existsSync(file)) return false;
  const prototype = (require(file) as { prototype: Record<string, unknown> }).prototype;
  if (prototype[name] === replacement) return true;
  const method = prototype[name];
  if (typeof method !== 'function' || createHash('sha256').update(method.toString()).digest('hex') !== knownSha256) return false;
  prototype[name] = replacement;
  return true;
}
