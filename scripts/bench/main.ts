/**
 * `npm run bench`: what the privacy costs, measured side by side in one process run.
 *   node dist/scripts/bench/main.js [--rows 1000000,10000000] [--json] [--seed N]
 *   node dist/scripts/bench/main.js --scale [--scale-rows 50000000]
 *   node dist/scripts/bench/main.js --upload-mib 2048   (the client's peak memory uploading 2 GiB)
 * Progress goes to stderr; results to stdout (a Markdown table; with --json, the last line is one
 * JSON object). At the largest row count the privacy tax is also measured with both engines on 1
 * thread and on every available CPU (`privacyTaxByThreads`), and projected to 16 and 64 threads
 * from the 1- and 2-thread runs (`projectedTax16`, `projectedTax64`, amdahl.ts). See
 * docs/PERFORMANCE.md for the figures and what each one measures.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { version as duckdbVersion } from "@duckdb/node-api";
import { Command, InvalidArgumentError } from "commander";
import { benchAgeDecrypt, opensslChachaMBps } from "./age-decrypt.js";
import { projectTax } from "./amdahl.js";
import { writePartyCsv } from "./data.js";
import { benchNitroVerify, benchSnpVerify } from "./evidence-verify.js";
import { availableMemory, describeMachine } from "./machine.js";
import { benchPrivacyTax, QUERY_ID, type TaxResult } from "./privacy-tax.js";
import { benchRelay } from "./relay.js";
import { type BenchReport, markdown, TARGETS, type ThreadRun } from "./report.js";
import { runScale } from "./scale.js";
import { benchUploadMemory } from "./upload-memory.js";
import { accountWork } from "./work.js";

interface Options {
  rows: number[];
  json: boolean;
  seed: number;
  decryptMib: number;
  verifySeconds: number;
  memoryLimit?: string;
  workDir?: string;
  scale: boolean;
  scaleRows: number;
  uploadMib?: number;
}

function positive(text: string): number {
  const n = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("a positive integer");
  return n;
}

function rowList(text: string): number[] {
  return text.split(",").map(positive);
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** DuckDB's limit for both engines: 60 % of available memory, capped at 16 GB. */
function defaultMemoryLimit(): string {
  return `${Math.max(1, Math.min(16, Math.floor((availableMemory() * 0.6) / 2 ** 30)))}GB`;
}

/** The thread counts of the scaling series: 1, 2 and every CPU this process may use. */
function threadCounts(): number[] {
  return [...new Set([1, 2, availableParallelism()])].sort((x, y) => x - y);
}

function threadRun(threads: number, t: TaxResult): ThreadRun {
  const { decryptLoadS, queryS, totalS, decryptLoadCpuS, decryptLoadMainCpuS } = t.enclave;
  const { loadS, loadCpuS } = t.plain;
  return {
    threads,
    ratio: t.ratio,
    enclave: { decryptLoadS, queryS, totalS, decryptLoadCpuS, decryptLoadMainCpuS },
    plain: { loadS, queryS: t.plain.queryS, totalS: t.plain.totalS, loadCpuS },
    resultsMatch: t.resultsMatch,
  };
}

async function measure(o: Options, workDir: string): Promise<BenchReport> {
  const memoryLimit = o.memoryLimit ?? defaultMemoryLimit();
  const settings = { memoryLimit, threads: 2 };
  const report: BenchReport = {
    machine: describeMachine(duckdbVersion()),
    command: `node dist/scripts/bench/main.js ${process.argv.slice(2).join(" ")}`.trim(),
    query: QUERY_ID,
    memoryLimit,
    privacyTaxRuns: [],
    privacyTaxByThreads: [],
    amdahl: null,
    physicalLimit: null,
    work: null,
    decrypt: { mib: 0, ageMBps: 0, rawMBps: 0, ratio: 0, opensslMBps: null, parallelMBps: 0, workers: 0 },
    verify: {
      snp: { vector: "", coldPerSec: 0, warmPerSec: 0 },
      nitro: { vector: "", coldPerSec: 0, warmPerSec: 0 },
    },
    relay: null,
    privacyTax: 0,
    projectedTax16: null,
    projectedTax64: null,
    serialLoadRatio: null,
    decryptRatio: 0,
    relayRatio: 0,
    snpVerifyPerSec: 0,
    memoryMBPerMillionRows: 0,
    targets: {},
  };
  // CPU-bound micro-measurements first, while this process is small: the large privacy-tax
  // stages leave a grown heap behind that slows the allocation-heavy decrypt loop.
  log(`[2/5] age decrypt vs node:crypto vs openssl over ${o.decryptMib} MiB`);
  report.decrypt = {
    ...(await benchAgeDecrypt(o.decryptMib * 2 ** 20, availableParallelism())),
    opensslMBps: opensslChachaMBps(),
  };
  log("[3/5] evidence verification, SEV-SNP and Nitro, cold and warm");
  report.verify = {
    snp: await benchSnpVerify(o.verifySeconds),
    nitro: await benchNitroVerify(o.verifySeconds),
  };

  for (const [i, rows] of o.rows.entries()) {
    log(`[1/5] privacy tax at ${rows} rows per party: generating data (seed ${o.seed})`);
    const files = (["purchases", "exposures"] as const).map((w) => writePartyCsv(workDir, w, rows, o.seed));
    const atTwo = await benchPrivacyTax(files, rows, settings, workDir, (s) => log(`      ${s}`));
    report.privacyTaxRuns.push(atTwo);
    if (i === 0) {
      // The relay runs now, while this process is small: the direct path sends from it, and a heap
      // grown by the larger stages would slow that side and flatter the relay.
      log(`[4/5] host relay vs direct enclave socket; [5/5] enclave peak RSS (${rows} rows per party)`);
      report.relay = await benchRelay(files, workDir, memoryLimit);
    }
    if (i === o.rows.length - 1) {
      // The thread series on the same files; the 2-thread run is the one just measured.
      for (const threads of threadCounts()) {
        log(`[1b/5] privacy tax at ${rows} rows per party, both engines on ${threads} thread(s)`);
        const t =
          threads === 2
            ? atTwo
            : await benchPrivacyTax(files, rows, { ...settings, threads }, workDir, (s) => log(`      ${s}`));
        report.privacyTaxByThreads.push(threadRun(threads, t));
        const one = report.privacyTaxByThreads.find((r) => r.threads === 1);
        const two = report.privacyTaxByThreads.find((r) => r.threads === 2);
        if (one && two && !report.amdahl) {
          report.amdahl = projectTax(one, two, availableParallelism());
          const parseMBps = atTwo.csvMB / one.plain.loadS;
          report.physicalLimit = {
            decryptMBpsPerCore: report.decrypt.rawMBps,
            parseMBpsPerCore: parseMBps,
            loadFloorRatio: 1 + parseMBps / report.decrypt.rawMBps,
          };
        }
        // Each figure as soon as it exists: a later failure must not lose it.
        log(`      ${JSON.stringify({ privacyTaxByThreads: report.privacyTaxByThreads.at(-1) })}`);
      }
    }
    for (const f of files) rmSync(f.path, { force: true });
  }
  const largest = report.privacyTaxRuns[report.privacyTaxRuns.length - 1]!;
  report.privacyTax = largest.ratio;
  report.work = accountWork(largest, report.decrypt.rawMBps, availableParallelism());
  report.projectedTax16 = report.amdahl?.projectedTax16 ?? null;
  report.projectedTax64 = report.amdahl?.projectedTax64 ?? null;
  report.serialLoadRatio = report.amdahl?.serialLoadRatio ?? null;
  report.decryptRatio = report.decrypt.ratio;
  report.relayRatio = report.relay!.ratio;
  report.snpVerifyPerSec = report.verify.snp.coldPerSec;
  report.memoryMBPerMillionRows = report.relay!.memory.peakMBPerMillionRows;
  report.targets = {
    privacyTax: report.privacyTax <= TARGETS.privacyTax,
    ...(report.projectedTax16 !== null
      ? { projectedTax16: report.projectedTax16 <= TARGETS.projectedTax16 }
      : {}),
    ...(report.serialLoadRatio !== null
      ? { serialLoadRatio: report.serialLoadRatio <= TARGETS.serialLoadRatio }
      : {}),
    decryptRatio: report.decryptRatio >= TARGETS.decryptRatio,
    snpVerifyPerSec: report.snpVerifyPerSec >= TARGETS.snpVerifyPerSec,
    relayRatio: report.relayRatio >= TARGETS.relayRatio,
  };
  return report;
}

async function main(): Promise<void> {
  const o = new Command("bench")
    .option(
      "--rows <list>",
      "rows per party, comma-separated (privacy tax at each)",
      rowList,
      [1_000_000, 10_000_000],
    )
    .option("--json", "print one JSON object as the last line", false)
    .option("--seed <n>", "data seed", positive, 1)
    .option("--decrypt-mib <n>", "MiB for the decrypt throughput run", positive, 256)
    .option("--verify-seconds <n>", "seconds per verification rate", positive, 4)
    .option("--memory-limit <size>", "DuckDB memory_limit for both engines (default 60 % of free memory)")
    .option("--work-dir <dir>", "where data and ciphertext are written (default the OS temp dir)")
    .option("--scale", "run only the scale run: two parties joined at --scale-rows each", false)
    .option("--scale-rows <n>", "rows per party in the scale run", positive, 50_000_000)
    .option("--upload-mib <n>", "run only the upload memory run: a file of n MiB (2048 for 2 GiB)", positive)
    .parse(process.argv)
    .opts<Options>();
  const workDir = mkdtempSync(join(o.workDir ?? tmpdir(), "cleanroom-bench-"));
  try {
    if (o.uploadMib !== undefined) {
      log(`upload of a ${o.uploadMib} MiB file by its own process: peak resident memory`);
      const uploadMemory = await benchUploadMemory(o.uploadMib, workDir);
      process.stdout.write(
        `${JSON.stringify({ machine: describeMachine(duckdbVersion()), uploadMemory })}\n`,
      );
      return;
    }
    if (o.scale) {
      const result = await runScale({
        rowsPerParty: o.scaleRows,
        seed: o.seed,
        workDir,
        ...(o.memoryLimit ? { memoryLimit: o.memoryLimit } : {}),
        log,
      });
      const machine = describeMachine(duckdbVersion());
      process.stdout.write(`${JSON.stringify({ machine, scale: result })}\n`);
      if (!result.completed) process.exitCode = 1;
      return;
    }
    const report = await measure(o, workDir);
    process.stdout.write(`${markdown(report)}\n`);
    if (o.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  const err = e as { code?: string; message?: string; stack?: string };
  process.stderr.write(
    `bench failed: ${err.code ?? "error"}: ${err.message ?? String(e)}\n${err.stack ?? ""}\n`,
  );
  process.exit(1);
});
