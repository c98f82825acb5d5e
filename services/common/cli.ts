/**
 * What the command-line tools share, so each prints its result and nothing else on stdout: strict arguments with
 * --help, a logger that keeps library chatter (kafkajs warnings) off the terminal unless LOG_LEVEL=debug asks for it,
 * and a failure as one line on stderr saying what failed and what to do, with a non-zero exit code.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from './config.ts';
import { createLogger, type LogFormat, type Logger } from './logger.ts';

/** A failure the tool explains itself: its message is the whole story, shown as is. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Exit code of a command line the tool does not understand (as for most Unix tools). */
export const USAGE_EXIT_CODE = 2;

const isDebug = (level: string | undefined) => /^(debug|trace)$/.test(level ?? '');
const debugging = () => isDebug(process.env.LOG_LEVEL);

/**
 * Parses the command line strictly (parseArgs's default: an unknown flag is an error, not ignored). `commands` lists
 * the subcommands and, for each, its actions (`dlq list|replay`); a word not in it is an error too. With --help (an option the tool
 * declares) the usage goes to stdout and the process exits 0 once the rest of the line has been checked, so
 * `tool <anything> --help` says whether <anything> is a command line the tool accepts. A line it does not accept
 * ends the process with one line on stderr and USAGE_EXIT_CODE.
 */
export function parseCommandLine<const T extends ParseArgsConfig>(config: T, usage: string, commands?: Record<string, readonly string[]>): ReturnType<typeof parseArgs<T>> {
  const refuse = (message: string): never => process.exit(report(new CliError(`${message}; see --help`, USAGE_EXIT_CODE)));
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs(config);
  } catch (error) {
    // node:util's message goes on about positionals after `--`; its first sentence is the point.
    return refuse((error as Error).message.split('. ')[0]!.replace(/\.$/, ''));
  }
  if (commands) {
    const [command, action] = (parsed as { positionals?: string[] }).positionals ?? [];
    const actions = command !== undefined && Object.hasOwn(commands, command) ? commands[command] : undefined;
    if (command !== undefined && actions === undefined) refuse(`unknown command "${command}" (one of ${Object.keys(commands).join(', ')})`);
    if (actions && actions.length > 0 && (action === undefined || !actions.includes(action))) {
      refuse(`${command} needs one of ${actions.join(', ')}${action === undefined ? '' : ` (not "${action}")`}`);
    }
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  return parsed;
}

/** The tool's logger: on stderr, silent unless LOG_LEVEL is debug or trace (library warnings are not the tool's result). */
export function cliLogger(name: string, level: string, format: LogFormat | undefined): Logger {
  return createLogger(name, isDebug(level) ? level : 'silent', { format, destination: process.stderr });
}

/** Errors of JavaScript itself: a message without advice. */
const UNEXPLAINED = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError']);

/** One line for stderr: what failed, and what to do when the error does not say. */
function describe(error: unknown): string {
  if (error instanceof CliError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ConfigError) return message.replace(/:\n\s*/, ': ').replace(/\n\s*/g, '; ');
  const line = message.replace(/\s*\n\s*/g, '; ');
  // This project's errors say what to do (KafkaConnectError names the setting); a bare or library error does not.
  const unexplained = error instanceof Error && (UNEXPLAINED.has(error.name) || error.name.startsWith('KafkaJS'));
  return unexplained && !debugging() ? `${line} (LOG_LEVEL=debug shows the details)` : line;
}

/** Prints `error` as one line (`error: …`, the stack too with LOG_LEVEL=debug) and returns the exit code it calls for. */
function report(error: unknown): number {
  process.stderr.write(`error: ${describe(error)}\n`);
  if (debugging() && error instanceof Error && !(error instanceof CliError) && error.stack) process.stderr.write(`${error.stack}\n`);
  return error instanceof CliError ? error.exitCode : 1;
}

/** For a tool's set-up before `runCli` (arguments, settings): its value, or the error reported and the process ended. */
export function orExit<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    process.exit(report(error));
  }
}

/** orExit for a set-up step that is asynchronous (preparing the cluster before a long-running process). */
export async function orExitAsync<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    process.exit(report(error));
  }
}

/**
 * Runs a tool: `main` returns the exit code; an error it throws is reported as one line and exits 1, or the
 * CliError's code. `cleanup` runs either way (clients closed), then the process exits.
 */
export async function runCli(main: () => Promise<number>, cleanup: () => Promise<unknown> = async () => undefined): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (error) {
    code = report(error);
  }
  await cleanup().catch(() => undefined);
  process.exit(code);
}
