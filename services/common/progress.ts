/**
 * Progress of long work, on stderr: on a terminal one line redrawn in place; anywhere else (a file, a CI log) whole
 * lines, at most one every `everyMs`, and the last state always, so a log shows the work moving without a flood.
 */
export interface Progress {
  /** The work's state now, as one line. */
  update(line: string): void;
  /** Ends the line (terminal) or writes the last state if not written yet (elsewhere). */
  done(): void;
}

export function progressLine(stream: NodeJS.WriteStream = process.stderr, { everyMs = 5000 } = {}): Progress {
  let last: string | undefined;
  let written: string | undefined;
  let writtenAt = -Infinity;
  if (stream.isTTY) {
    return {
      update(line) {
        last = line;
        // Carriage return and erase-line: a shorter state leaves nothing of the longer one behind.
        stream.write(`\r\x1b[2K${line}`);
      },
      done() {
        if (last !== undefined) stream.write('\n');
        last = undefined;
      },
    };
  }
  return {
    update(line) {
      last = line;
      if (performance.now() - writtenAt < everyMs) return;
      stream.write(`${line}\n`);
      written = line;
      writtenAt = performance.now();
    },
    done() {
      if (last !== undefined && last !== written) stream.write(`${last}\n`);
      last = written = undefined;
      writtenAt = -Infinity;
    },
  };
}
