/**
 * Contiguous offset commits for a partition whose records are handled concurrently: records finish in any order, but
 * the committable offset only moves past a record once it and every record before it are done. A crash then
 * re-delivers what was in flight (at-least-once) and never skips it.
 */
export class OffsetTracker {
  /** Offsets started and not yet committable, in the order they were started (ascending). */
  readonly #inFlight: Array<{ offset: bigint; done: boolean }> = [];
  #committable: bigint | undefined;

  start(offset: string): void {
    this.#inFlight.push({ offset: BigInt(offset), done: false });
  }

  /** Marks a record done; returns the offset to commit (next to read) if it moved, else undefined. */
  done(offset: string): string | undefined {
    const target = BigInt(offset);
    const entry = this.#inFlight.find((candidate) => candidate.offset === target);
    if (entry) entry.done = true;
    let moved = false;
    while (this.#inFlight[0]?.done) {
      this.#committable = this.#inFlight.shift()!.offset + 1n;
      moved = true;
    }
    return moved ? String(this.#committable) : undefined;
  }

  get pending(): number {
    return this.#inFlight.length;
  }
}
