import { performance } from "node:perf_hooks";

/** Wall-clock seconds taken by `f`. */
export async function seconds(f: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await f();
  return (performance.now() - start) / 1000;
}

/** This process's CPU seconds (user + system, every thread: DuckDB's, workers', Node's). */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
