/**
 * Contiguous offset commits for a partition whose records are handled concurrently: records finish in any order, but
 * the committable offset only moves past a record once it and every record before it are done. A crash then
 * re-delivers what was in flight (at-least-once) and never skips it.
 */
export class OffsetTracker {
  /** Offsets started and not yet committable, in the order they were started (ascending). */
  readonly #inFlight: Array<{ offset: string; done: boolean }> = [];
  /** The same entries by offset, so marking one done does not scan the in-flight list. */
  readonly #byOffset = new Map<string, { offset: string; done: boolean }>();
  /** Entries before this index in #inFlight are done and committed past; compacted now and then, not per record. */
  #head = 0;

  start(offset: string): void {
    const entry = { offset, done: false };
    this.#inFlight.push(entry);
    this.#byOffset.set(offset, entry);
  }

  /** Marks a record done; returns the offset to commit (next to read) if it moved, else undefined. */
  done(offset: string): string | undefined {
    const entry = this.#byOffset.get(offset);
    if (!entry) return undefined;
    entry.done = true;
    this.#byOffset.delete(offset);
    const before = this.#head;
    while (this.#inFlight[this.#head]?.done) this.#head += 1;
    if (this.#head === before) return undefined;
    const committable = String(BigInt(this.#inFlight[this.#head - 1]!.offset) + 1n);
    if (this.#head > 1024) {
      this.#inFlight.splice(0, this.#head);
      this.#head = 0;
    }
    return committable;
  }
}
