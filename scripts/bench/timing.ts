import { readFileSync } from "node:fs";
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

/**
 * CPU seconds (user + system) of one thread: the calling thread (Node's main thread when called
 * from it), or the main thread of process `pid`. utime and stime of its /proc stat file, in
 * Linux's 1/100 s clock ticks. Null where that file does not exist.
 */
export function threadCpuSeconds(pid?: number): number | null {
  try {
    const stat = readFileSync(
      pid === undefined ? "/proc/thread-self/stat" : `/proc/${pid}/task/${pid}/stat`,
      "utf8",
    );
    // Fields after the parenthesised command name, which may itself hold spaces: state is [0].
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** `total` plus a thread's CPU seconds between two readings; null once any reading was null. */
export function addThreadCpu(
  total: number | null,
  before: number | null,
  after: number | null,
): number | null {
  return total === null || before === null || after === null ? null : total + after - before;
}
