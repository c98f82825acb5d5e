/**
 * Every command the docs show is one the project really has: each ```sh block of README.md and docs/ is read line by
 * line, and each command must be an npm script that exists (with its command line accepted by the script's CLI: run
 * with --help, which checks the subcommand and every flag and then exits without doing anything) or a command this
 * suite or CI runs (KNOWN below). Inline `npm run …` mentions must name existing scripts too. So a renamed flag,
 * subcommand or script fails here instead of leaving a newcomer with a command that does not work.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');

interface Manifest { name: string; scripts?: Record<string, string>; workspaces?: string[] }
const manifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
const rootManifest = manifest(root);
/** Workspace packages by name, with their directory. */
const workspaces = new Map(rootManifest.workspaces!.flatMap((pattern) => {
  const parent = join(root, pattern.replace(/\/\*$/, ''));
  return readdirSync(parent).filter((dir) => existsSync(join(parent, dir, 'package.json'))).map((dir): [string, string] => [manifest(join(parent, dir)).name, join(parent, dir)]);
}));

/** Commands that are not npm scripts, and what runs each. */
const KNOWN: Record<string, { what: RegExp; ranBy: string }> = {
  'npm install': { what: /^npm install$/, ranBy: '.ci/run (npm ci) installs the same lockfile' },
  'npx vitest run': { what: /^npx vitest run( test\/\S+\.test\.ts)?$/, ranBy: 'npm test (vitest run)' },
  export: { what: /^export( [A-Z_][A-Z0-9_]*=\S+)+$/, ranBy: 'the shell: settings the suite reads (test/common/config.test.ts)' },
  'npm pack': { what: /^npm pack --workspace \S+$/, ranBy: 'test/producer/sdk-package.test.ts (npm pack --dry-run)' },
  'docker compose up': { what: /^docker compose up$/, ranBy: 'test/deploy/compose.test.ts validates docker-compose.yml' },
  '.ci/run': { what: /^\.ci\/run$/, ranBy: 'CI' },
};

/** Shell words of one line, with `&&`, `|` and `;` as words of their own; a `#` word starts a comment. */
export function words(line: string): string[] {
  const out: string[] = [];
  let current: string | undefined;
  let quote: string | undefined;
  for (let index = 0; index < line.length; index += 1) {
    const char = line[index]!;
    if (quote) {
      if (char === quote) quote = undefined;
      else current += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      current ??= '';
    } else if (/\s/.test(char)) {
      if (current !== undefined) out.push(current);
      current = undefined;
    } else if (char === '#' && current === undefined) {
      break;
    } else if (char === '|' || char === ';' || (char === '&' && line[index + 1] === '&')) {
      if (current !== undefined) out.push(current);
      current = undefined;
      out.push(char === '&' ? '&&' : char);
      if (char === '&') index += 1;
    } else {
      current = (current ?? '') + char;
    }
  }
  if (current !== undefined) out.push(current);
  return out;
}

/** The commands of a document's sh blocks: continuation lines joined, comments dropped, `a && b` split. */
export function commandsOf(markdown: string): string[][] {
  const commands: string[][] = [];
  for (const [, block] of markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    for (const line of block!.replace(/\\\n\s*/g, ' ').split('\n')) {
      let command: string[] = [];
      for (const word of [...words(line), '&&']) {
        if (word === '&&' || word === ';' || word === '|') {
          // Leading VAR=value words set the environment of the command that follows.
          const rest = command.slice(command.findIndex((part) => !/^[A-Z_][A-Z0-9_]*=/.test(part)));
          if (command.length > 0 && rest.length > 0 && !command.every((part) => /^[A-Z_][A-Z0-9_]*=/.test(part))) commands.push(rest);
          command = [];
        } else {
          command.push(word);
        }
      }
    }
  }
  return commands;
}

interface Verdict {
  problem?: string;
  /** A script's CLI to run with the documented arguments and --help. */
  cli?: { args: string[] };
}

/** Whether a documented command exists, and which CLI invocation proves its arguments are accepted. */
export function judge(command: string[], scripts = rootManifest.scripts ?? {}): Verdict {
  const text = command.join(' ');
  const [tool, sub, ...rest] = command;
  if (tool === 'npm' && (sub === 'run' || sub === 'start' || sub === 'test')) {
    const args = sub === 'run' ? rest.slice(1) : rest;
    const name = sub === 'run' ? rest[0] : sub;
    const workspaceFlag = args.indexOf('--workspace');
    if (workspaceFlag >= 0) {
      const dir = workspaces.get(args[workspaceFlag + 1] ?? '');
      if (!dir) return { problem: `\`${text}\`: no workspace package "${args[workspaceFlag + 1]}"` };
      return manifest(dir).scripts?.[name!] ? {} : { problem: `\`${text}\`: the workspace has no script "${name}"` };
    }
    const script = name === undefined ? undefined : scripts[name];
    if (!script) return { problem: `\`${text}\`: package.json has no script "${name}"` };
    const separator = args.indexOf('--');
    if (args.length > 0 && separator !== 0) return { problem: `\`${text}\`: arguments for a script go after \`--\`` };
    const given = args.slice(1);
    if (given.length === 0) return {};
    const [program, ...fixed] = script.split(' ');
    if (program !== 'node') return { problem: `\`${text}\`: "${name}" runs ${program}, not a CLI that can check its arguments` };
    return { cli: { args: [...fixed, ...given] } };
  }
  const known = Object.values(KNOWN).find(({ what }) => what.test(text));
  if (known) {
    if (text.startsWith('npm pack') && !workspaces.has(command[3]!)) return { problem: `\`${text}\`: no workspace package "${command[3]}"` };
    return {};
  }
  return { problem: `\`${text}\` is neither an npm script nor a command the suite or CI runs (test/docs/commands.test.ts KNOWN)` };
}

const markdownIn = (dir: string) => readdirSync(join(root, dir)).filter((file) => file.endsWith('.md')).map((file) => `${dir}/${file}`);
const documents = ['README.md', ...markdownIn('docs'), ...[...workspaces.values()].flatMap((dir) => markdownIn(dir.slice(root.length + 1)))];

describe('the commands the docs show', () => {
  it('finds the docs and their commands', () => {
    expect(documents).toEqual(expect.arrayContaining(['README.md', 'docs/operations.md', 'docs/benchmarks.md', 'docs/security.md', 'docs/producing-events.md', 'examples/workflow-engine/README.md']));
    const readme = commandsOf(readFileSync(join(root, 'README.md'), 'utf8')).map((command) => command.join(' '));
    // The newcomer's two commands stay on the first page.
    expect(readme).toEqual(expect.arrayContaining(['npm install', 'npm start', 'npm test']));
  });

  it('tells a command that exists from one that does not (the check can fail)', () => {
    const scripts = { rules: 'node services/cli/rules-cli.ts', test: 'vitest run' };
    expect(judge(['npm', 'run', 'rulez', '--', 'list'], scripts).problem).toMatch(/no script "rulez"/);
    expect(judge(['npm', 'run', 'rules', 'list'], scripts).problem).toMatch(/after `--`/);
    expect(judge(['curl', 'http://127.0.0.1:8080/'], scripts).problem).toMatch(/neither an npm script/);
    expect(judge(['npm', 'start', '--workspace', 'nope'], scripts).problem).toMatch(/no workspace package/);
    expect(judge(['npm', 'run', 'rules', '--', 'list', '--application', 'a'], scripts)).toEqual({ cli: { args: ['services/cli/rules-cli.ts', 'list', '--application', 'a'] } });
    expect(commandsOf('```sh\nFOO=1 npm run rules -- get "my rule" \\\n  --x # a comment\nexport A=1 B=2\n```\n')).toEqual([['npm', 'run', 'rules', '--', 'get', 'my rule', '--x'], ['export', 'A=1', 'B=2']]);
  });

  for (const document of documents) {
    it(`${document}: every command exists, and every command line a CLI is given is one it accepts`, { timeout: 120_000 }, async () => {
      const markdown = readFileSync(join(root, document), 'utf8');
      const verdicts = commandsOf(markdown).map((command) => ({ command, ...judge(command) }));
      const problems = verdicts.flatMap(({ problem }) => (problem ? [problem] : []));
      // Scripts mentioned in prose or tables, e.g. `npm run stack:status`, must exist too.
      for (const [, name] of markdown.matchAll(/`npm run ([\w:.-]+)/g)) if (!rootManifest.scripts?.[name!]) problems.push(`\`npm run ${name}\` (inline): no such script`);
      // Each CLI checks its command line and exits at --help without connecting anywhere.
      for (const { command, cli } of verdicts) {
        if (!cli) continue;
        const result = await run(process.execPath, [...cli.args, '--help'], { cwd: root, timeout: 30_000 }).then(() => undefined, (error: { stderr?: string; message: string }) => (error.stderr || error.message).trim());
        if (result !== undefined) problems.push(`\`${command.join(' ')}\`: ${result}`);
      }
      expect(problems).toEqual([]);
    });
  }
});
