/**
 * Amdahl projections of the privacy tax to machines larger than the one measured. From a side's
 * run with 1 thread (T1) and with 2 (T2), T1 = s + p and T2 = s + p/2 give its serial part
 * s = 2·T2 − T1 and parallel part p = 2·(T1 − T2); on N threads it would take s + p/N. The
 * projected tax on N threads is the clean room's projection over plain DuckDB's, each side from
 * its own runs in the same process (the same-run baseline). Assumptions (docs/PERFORMANCE.md):
 * the parallel part keeps scaling linearly (no memory-bandwidth or NUMA ceiling), and the
 * 1-thread run is serial work plus one thread's share; the clean room also runs a decrypt worker
 * and Node's main thread beside DuckDB's one thread, which makes its T1 smaller and so its s
 * larger: the projection errs against the clean room.
 */

export interface Amdahl {
  /** Seconds that do not shrink with threads. */
  serialS: number;
  /** Seconds on one thread that divide across threads. */
  parallelS: number;
}

/**
 * s and p from the 1- and 2-thread times, clamped to 0 ≤ s ≤ T1: run-to-run noise can make T2
 * exceed T1 (all serial) or fall under T1/2 (all parallel).
 */
export function amdahl(t1: number, t2: number): Amdahl {
  const serialS = Math.min(t1, Math.max(0, 2 * t2 - t1));
  return { serialS, parallelS: t1 - serialS };
}

/** The time on `threads` threads. */
export function projectTime(a: Amdahl, threads: number): number {
  return a.serialS + a.parallelS / threads;
}

export interface SideTimes {
  enclave: { decryptLoadS: number; totalS: number; decryptLoadCpuS: number };
  plain: { loadS: number; totalS: number };
}

export interface TaxProjection {
  /** Whole runs (grant, decrypt + load, query) and the loads alone, each side. */
  fits: { enclave: Amdahl; plain: Amdahl; enclaveLoad: Amdahl; plainLoad: Amdahl };
  projectedTax16: number;
  projectedTax64: number;
  /** The enclave load's serial part over plain DuckDB's (null when plain's is 0). */
  serialLoadRatio: number | null;
  /** Cores the enclave's 2-thread load kept busy on average (its CPU seconds over its wall time). */
  busyCoresAtTwo: number;
  /**
   * The 2-thread load kept at least 90 % of the machine's `cpus` busy: its time was bounded by the
   * cores, not by a serial stage, so the fits read saturation as serial time and the projections
   * overstate the tax. Only a machine with cores to spare beside 2 DuckDB threads (the decrypt
   * workers and Node's main thread run too) measures s.
   */
  coreBound: boolean;
}

export function projectTax(one: SideTimes, two: SideTimes, cpus: number): TaxProjection {
  const fits = {
    enclave: amdahl(one.enclave.totalS, two.enclave.totalS),
    plain: amdahl(one.plain.totalS, two.plain.totalS),
    enclaveLoad: amdahl(one.enclave.decryptLoadS, two.enclave.decryptLoadS),
    plainLoad: amdahl(one.plain.loadS, two.plain.loadS),
  };
  const tax = (n: number) => projectTime(fits.enclave, n) / projectTime(fits.plain, n);
  const busyCoresAtTwo = two.enclave.decryptLoadCpuS / two.enclave.decryptLoadS;
  return {
    fits,
    projectedTax16: tax(16),
    projectedTax64: tax(64),
    serialLoadRatio: fits.plainLoad.serialS > 0 ? fits.enclaveLoad.serialS / fits.plainLoad.serialS : null,
    busyCoresAtTwo,
    coreBound: busyCoresAtTwo >= 0.9 * cpus,
  };
}
