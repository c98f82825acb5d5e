/** Durations as operators write them in settings and topic names: `500ms`, `5s`, `5m`, `2h`, `1d`. */
const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const pattern = /^(\d+)(ms|s|m|h|d)$/;

export function parseDuration(text: string): number {
  const match = pattern.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a duration: write a whole number with ms, s, m, h or d, e.g. 5s or 30m`);
  return Number(match[1]) * units[match[2] as keyof typeof units];
}

/** The largest unit that divides the duration exactly, so formatDuration(parseDuration(x)) reads like x. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= units[unit] && ms % units[unit] === 0) return `${ms / units[unit]}${unit}`;
  }
  return `${ms}ms`;
}
