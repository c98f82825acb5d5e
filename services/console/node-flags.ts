/**
 * The Node flags the console runs with, wherever it is started (npm start, npm run console, docker-compose, the
 * benchmarks). Storing a backlog of attempts allocates fast, and V8 sizes its heap for that speed:
 * - a young generation of at most 8 MB per semi-space instead of V8's 32: it grows the young generation to its
 *   maximum and keeps it (bench:history, five million attempts on SQLite: peak RSS 380 and 413 MB → 330 and 334 MB);
 * - the old generation let grow by 20 % of what survived its last full collection, not by V8's own factor (up to
 *   several times it at this allocation rate): a million attempts on SQLite, peak RSS 332 → 244 MB, storing 326
 *   → 221 MB, at 15,254 and 15,054 attempts/s.
 * The same ingest rate and query times with each.
 */
export const CONSOLE_NODE_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=20'];
