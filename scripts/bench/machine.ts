/** What the figures were measured on, for the report. */
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  duckdb: string;
  /**
   * Whether the hypervisor takes back this VM's free memory (a virtio balloon with free page
   * reporting): memory first touched after that costs system time, unevenly, so phases that
   * allocate much (a query's hash tables) vary from run to run. Null where it cannot be read.
   */
  freePageReporting: boolean | null;
}

export function describeMachine(duckdb: string): Machine {
  let model = "unknown";
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? model;
  } catch {
    // Not Linux: the model stays unknown.
  }
  return {
    cpus: availableParallelism(),
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    duckdb,
    freePageReporting: freePageReporting(),
  };
}

/** Feature bit 5 of a virtio balloon device is VIRTIO_BALLOON_F_REPORTING (virtio spec 5.5.3). */
const BALLOON = "/sys/bus/virtio/drivers/virtio_balloon";
const F_REPORTING = 5;

function freePageReporting(): boolean | null {
  try {
    return readdirSync(BALLOON)
      .filter((d) => d.startsWith("virtio"))
      .some((d) => readFileSync(`${BALLOON}/${d}/features`, "utf8")[F_REPORTING] === "1");
  } catch {
    // On Linux, no balloon driver: nothing reports free pages to a host.
    return process.platform === "linux" ? false : null;
  }
}

/** MemAvailable from /proc/meminfo in bytes (free memory where that file is missing). */
export function availableMemory(): number {
  try {
    const kb = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // Fall through.
  }
  return totalmem();
}
