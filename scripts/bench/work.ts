/**
 * The work of a privacy-tax run: CPU seconds of all threads on each side, what the clean room
 * does beyond plain DuckDB's work, and the least time ratio that work allows on this machine.
 * On a machine whose cores are all busy (`amdahl.coreBound`) time follows work, so the work ratio
 * says what no scheduling can hide; the floor says what even a clean room with no overhead but
 * the owner's checks and the decryption could not beat here (docs/PERFORMANCE.md).
 */
import type { TaxResult } from "./privacy-tax.js";

export interface WorkAccount {
  /** Decrypt + load + query, CPU seconds of all threads. */
  enclaveCpuS: number;
  /** Load + query, CPU seconds of all threads. */
  plainCpuS: number;
  /** enclaveCpuS / plainCpuS. */
  ratio: number;
  /** What the clean room does beyond plain's work, CPU seconds; the four add up to the difference. */
  extra: {
    /** The owner's quality report and identity-format rule, the load's own statement run apart. */
    ownerChecksCpuS: number;
    /** Age decryption of the plaintext's bytes at one core's raw node:crypto rate. */
    decryptCpuS: number;
    /** The query's: rule check, differencing guard, output policy, sealed results (enclave query − plain query). */
    queryCpuS: number;
    /** The rest of the load: receiving and cutting the ciphertext, scratch files, per-segment statements. */
    loadRestCpuS: number;
  };
  /** CPUs this process may use. */
  cores: number;
  /**
   * (plain's work + the owner's checks + the decryption) / cores / plain's time: a clean room that
   * does at least that work, perfectly spread over every core, takes at least this multiple of
   * plain DuckDB's time here.
   */
  floorRatio: number;
}

export function accountWork(t: TaxResult, decryptMBpsPerCore: number, cores: number): WorkAccount {
  const enclaveCpuS = t.enclave.decryptLoadCpuS + t.enclave.queryCpuS;
  const plainCpuS = t.plain.loadCpuS + t.plain.queryCpuS;
  const ownerChecksCpuS = t.plain.ownerChecksCpuS;
  const decryptCpuS = t.csvMB / decryptMBpsPerCore;
  return {
    enclaveCpuS,
    plainCpuS,
    ratio: enclaveCpuS / plainCpuS,
    extra: {
      ownerChecksCpuS,
      decryptCpuS,
      queryCpuS: t.enclave.queryCpuS - t.plain.queryCpuS,
      loadRestCpuS: t.enclave.decryptLoadCpuS - t.plain.loadCpuS - ownerChecksCpuS - decryptCpuS,
    },
    cores,
    floorRatio: (plainCpuS + ownerChecksCpuS + decryptCpuS) / cores / t.plain.totalS,
  };
}
