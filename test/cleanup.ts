/**
 * Runs in every test file (vitest setupFiles): once the file's tests and their own afterAll hooks are done (hooks run
 * in reverse order, this one last), the topics and schema subjects of the file's test clusters are deleted.
 */
import { afterAll } from 'vitest';
import { removeTestClusters } from './helpers.ts';

afterAll(removeTestClusters, 60_000);
