/**
 * npm run publish-events -- --file events.jsonl   (or JSON lines on stdin)
 * Publishes one WorkflowEvent per line and reports on stdout how many were published and, for every rejected line,
 * why. Exit code 0 when every line was published, 1 otherwise (an error that stops it: one line on stderr).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { WorkflowEvent } from '../../schemas/index.ts';
import { cliLogger, CliError, orExit, parseCommandLine, runCli } from '../common/cli.ts';
import { baseSettings, loadConfig } from '../common/config.ts';
import { kafkaConnection } from '../common/kafka.ts';
import { registryConnection } from '../common/registry.ts';
import { checkEvent, createPublisher, PublishError, type Publisher } from './publisher.ts';

const USAGE = `
usage: npm run publish-events -- [--file events.jsonl] [--batch-size 500]

Reads JSON lines (one WorkflowEvent each) from the file or stdin and publishes them to the workflow-events topic.
Prints each rejected line with its reason, then "published N, rejected M"; exit code 0 only when every line was published.
`;

const { values } = parseCommandLine({
  options: {
    file: { type: 'string', short: 'f' },
    'batch-size': { type: 'string', default: '500' },
    help: { type: 'boolean', short: 'h', default: false },
  },
}, USAGE);

const config = orExit(() => loadConfig(baseSettings));
const logger = cliLogger('publish-events', config.LOG_LEVEL, config.LOG_FORMAT);
const batchSize = Math.max(1, Number(values['batch-size']) || 500);
let publisher: Publisher | undefined;

let published = 0;
let rejected = 0;
let batch: Array<{ line: number; event: WorkflowEvent }> = [];
const reject = (line: number, reason: string) => {
  rejected += 1;
  console.log(`line ${line}: rejected: ${reason}`);
};

async function send(publisher: Publisher): Promise<void> {
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

async function main(): Promise<number> {
  let source: NodeJS.ReadableStream = process.stdin;
  if (values.file) {
    const file = createReadStream(values.file);
    // Opened before connecting: a wrong path is told at once, not after a broker timeout.
    await new Promise((resolve, reject) => file.once('ready', resolve).once('error', (error) => reject(new CliError(`cannot read ${values.file}: ${error.message}`))));
    source = file;
  } else if (process.stdin.isTTY) {
    console.error('reading events from stdin (one JSON object per line; Ctrl-D to end)…');
  }
  publisher = await createPublisher({ ...kafkaConnection(config), ...registryConnection(config), topicPrefix: config.TOPIC_PREFIX, logger });

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
    if (batch.length >= batchSize) await send(publisher);
  }
  await send(publisher);
  await publisher.close();
  console.log(`published ${published}, rejected ${rejected}`);
  return rejected === 0 ? 0 : 1;
}

await runCli(main, async () => publisher?.close());
