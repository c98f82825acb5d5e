// autocannon ships no types; the benchmark uses only this much of it.
declare module 'autocannon' {
  interface Options { url: string; method?: string; body?: string; headers?: Record<string, string>; connections?: number; duration?: number }
  interface Result { requests: { average: number; total: number } }
  export default function autocannon(options: Options): Promise<Result>;
}
