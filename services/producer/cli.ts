/**
 * npm run publish-events -- --file events.jsonl   (or JSON lines on stdin)
 * Publishes one WorkflowEvent per line and reports how many were published and, for every rejected line, why.
 * Exit code 0 when every line was published, 1 otherwise.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { WorkflowEvent } from '../../schemas/index.ts';
import { baseSettings, loadConfig } from '../common/config.ts';
import { kafkaConnection } from '../common/kafka.ts';
import { createLogger } from '../common/logger.ts';
import { registryConnection } from '../common/registry.ts';
import { checkEvent, createPublisher, PublishError } from './publisher.ts';

const { values } = parseArgs({
  options: {
    file: { type: 'string', short: 'f' },
    'batch-size': { type: 'string', default: '500' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log('usage: npm run publish-events -- [--file events.jsonl] [--batch-size 500]\nReads JSON lines (one WorkflowEvent each) from the file or stdin.');
  process.exit(0);
}

const config = loadConfig(baseSettings);
// stdout is the report; logs go to stderr.
const logger = createLogger('publish-events', config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, process.stderr);
const batchSize = Math.max(1, Number(values['batch-size']) || 500);
const source = values.file ? createReadStream(values.file) : process.stdin;
if (!values.file && process.stdin.isTTY) console.error('reading events from stdin (one JSON object per line; Ctrl-D to end)…');

const publisher = await createPublisher({
  ...kafkaConnection(config),
  ...registryConnection(config),
  topicPrefix: config.TOPIC_PREFIX,
  logger,
});

let published = 0;
let rejected = 0;
let batch: Array<{ line: number; event: WorkflowEvent }> = [];
const reject = (line: number, reason: string) => {
  rejected += 1;
  console.log(`line ${line}: rejected: ${reason}`);
};

async function send(): Promise<void> {
  const sending = batch;
  batch = [];
  if (sending.length === 0) return;
  try {
    published += (await publisher.publish(sending.map((entry) => entry.event))).published;
  } catch (error) {
    if (!(error instanceof PublishError)) throw error;
    published += error.published;
    for (const { index } of error.notPublished) reject(sending[index]!.line, `not published: ${(error.cause as Error).message}`);
  }
}

let lineNumber = 0;
for await (const text of createInterface({ input: source, crlfDelay: Infinity })) {
  lineNumber += 1;
  if (!text.trim()) continue;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    reject(lineNumber, `not valid JSON (${(error as Error).message})`);
    continue;
  }
  const checked = checkEvent(parsed);
  if (!checked.ok) {
    reject(lineNumber, checked.issues.map((issue) => `${issue.field}: ${issue.reason}`).join('; '));
    continue;
  }
  batch.push({ line: lineNumber, event: checked.event });
  if (batch.length >= batchSize) await send();
}
await send();
await publisher.close();
console.log(`published ${published}, rejected ${rejected}`);
process.exit(rejected === 0 ? 0 : 1);
