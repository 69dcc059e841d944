/** Resident memory: this process's by sampling, another process's peak from /proc. */
import { readFileSync } from "node:fs";

const MB = 1024 * 1024;

/** Samples process RSS every `everyMs` until stopped; reports the peak above the starting value. */
export function rssSampler(everyMs = 20): { stop: () => { baseMB: number; peakMB: number } } {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage.rss());
      return { baseMB: base / MB, peakMB: peak / MB };
    },
  };
}

/** VmRSS and VmHWM (peak RSS) of a process, in MB, from /proc/<pid>/status. */
export function procMemory(pid: number): { rssMB: number; hwmMB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMB: (kb("VmRSS") * 1024) / MB, hwmMB: (kb("VmHWM") * 1024) / MB };
}
