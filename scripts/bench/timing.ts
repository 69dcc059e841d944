import { performance } from "node:perf_hooks";

/** Wall-clock seconds taken by `f`. */
export async function seconds(f: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await f();
  return (performance.now() - start) / 1000;
}
