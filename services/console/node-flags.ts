/**
 * The Node flags the console runs with, wherever it is started (npm start, npm run console, docker-compose, the
 * benchmarks). A young generation of at most 8 MB per semi-space instead of V8's 32: storing a backlog of attempts
 * allocates fast, V8 then grows the young generation to its maximum and keeps it, and the console's peak RSS with it
 * (bench:history, five million attempts on SQLite: 380 and 413 MB → 330 and 334 MB, the same ingest rate and query times).
 */
export const CONSOLE_NODE_FLAGS = ['--max-semi-space-size=8'];
