/** The benchmark's result object (printed as JSON) and its Markdown table (docs/PERFORMANCE.md). */
import type { VerifyRates } from "./evidence-verify.js";
import type { Machine } from "./machine.js";
import type { TaxResult } from "./privacy-tax.js";
import type { RelayResult } from "./relay.js";

/** The goals from the issue; figures are reported whether or not they are met. */
export const TARGETS = {
  privacyTax: 1.15,
  decryptRatio: 0.8,
  snpVerifyPerSec: 500,
  relayRatio: 0.9,
} as const;

export interface BenchReport {
  machine: Machine;
  command: string;
  query: string;
  memoryLimit: string;
  privacyTaxRuns: TaxResult[];
  decrypt: { mib: number; ageMBps: number; rawMBps: number; ratio: number; opensslMBps: number | null };
  verify: { snp: VerifyRates; nitro: VerifyRates };
  relay: RelayResult | null;
  /** Headline figures: privacy tax at the largest size, decrypt and relay ratios, warm SNP rate. */
  privacyTax: number;
  decryptRatio: number;
  relayRatio: number;
  snpVerifyPerSec: number;
  memoryMBPerMillionRows: number;
  targets: Partial<Record<keyof typeof TARGETS, boolean>>;
}

const s = (x: number) => `${x.toFixed(2)} s`;
const f = (x: number, d = 0) => x.toFixed(d);
const met = (ok: boolean | undefined) => (ok === undefined ? "" : ok ? " ✓" : " ✗ (target missed)");

function row(cells: string[]): string {
  return `| ${cells.join(" | ")} |`;
}

export function markdown(r: BenchReport): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB RAM, Node ${m.node}, DuckDB ${m.duckdb}; ` +
      `DuckDB memory_limit ${r.memoryLimit}, 2 threads. Command: \`${r.command}\``,
    "",
    `### 1. Privacy tax (approved query \`${r.query}\`)`,
    "",
    row([
      "rows per party (purchases / exposures)",
      "CSV MB",
      "partner age encrypt",
      "enclave grant",
      "enclave decrypt + load",
      "enclave query + policy + encrypted result",
      "enclave total",
      "plain DuckDB load",
      "plain DuckDB query",
      "plain total",
      "ratio",
      "ratio incl. encrypt",
      "enclave peak RSS Δ",
      "answers match",
    ]),
    row(Array(14).fill("---")),
  );
  for (const t of r.privacyTaxRuns) {
    out.push(
      row([
        `${t.rowsPerParty} (${t.rows.purchases} / ${t.rows.exposures})`,
        f(t.csvMB),
        s(t.enclave.partnerEncryptS),
        s(t.enclave.grantS),
        s(t.enclave.decryptLoadS),
        s(t.enclave.queryS),
        s(t.enclave.totalS),
        s(t.plain.loadS),
        s(t.plain.queryS),
        s(t.plain.totalS),
        `**${f(t.ratio, 2)}×**`,
        `${f(t.ratioWithEncrypt, 2)}×`,
        `${f(t.enclave.peakRssDeltaMB)} MB`,
        t.resultsMatch ? "yes" : "NO",
      ]),
    );
  }
  out.push(
    "",
    `Target ≤ ${TARGETS.privacyTax}× at the largest size: ${f(r.privacyTax, 2)}×${met(r.targets.privacyTax)}`,
  );
  const d = r.decrypt;
  out.push(
    "",
    "### 2–5. Decrypt, verification, relay, memory",
    "",
    row(["measurement", "figure", "target"]),
    row(["---", "---", "---"]),
    row([`age stream decrypt (${f(d.mib)} MiB)`, `${f(d.ageMBps)} MB/s`, ""]),
    row(["raw node:crypto ChaCha20-Poly1305, same 64 KiB chunks", `${f(d.rawMBps)} MB/s`, ""]),
    row([
      "`openssl speed -evp chacha20-poly1305` (64 KiB)",
      d.opensslMBps === null ? "n/a" : `${f(d.opensslMBps)} MB/s`,
      "",
    ]),
    row([
      "decrypt ratio (age / raw)",
      `**${f(d.ratio, 3)}**`,
      `≥ ${TARGETS.decryptRatio}${met(r.targets.decryptRatio)}`,
    ]),
    row([
      `SEV-SNP verify (${r.verify.snp.vector}), warm / cold`,
      `**${f(r.verify.snp.warmPerSec)}/s** / ${f(r.verify.snp.coldPerSec)}/s`,
      `≥ ${TARGETS.snpVerifyPerSec}/s warm${met(r.targets.snpVerifyPerSec)}`,
    ]),
    row([
      `Nitro verify (${r.verify.nitro.vector}), warm / cold`,
      `${f(r.verify.nitro.warmPerSec)}/s / ${f(r.verify.nitro.coldPerSec)}/s`,
      "",
    ]),
  );
  const rl = r.relay;
  if (rl) {
    out.push(
      row([
        `grant + ingest through the host (${f(rl.ciphertextMB)} MB ciphertext)`,
        `${s(rl.relayGrantIngestS)}, ${f(rl.relayMBps)} MB/s`,
        "",
      ]),
      row([
        "grant + ingest straight to the enclave socket",
        `${s(rl.directGrantIngestS)}, ${f(rl.directMBps)} MB/s`,
        "",
      ]),
      row([
        "relay ratio (relay / direct throughput)",
        `**${f(rl.ratio, 3)}**`,
        `≥ ${TARGETS.relayRatio}${met(r.targets.relayRatio)}`,
      ]),
      row(["partner encrypt + upload to the host's store", s(rl.relayEncryptUploadS), ""]),
      row([
        `enclave process peak RSS (VmHWM) after ${rl.memory.rowsLoaded} rows`,
        `${f(rl.memory.enclavePeakMB)} MB (${f(rl.memory.enclaveBaseMB)} MB before loading)`,
        "",
      ]),
      row(["enclave peak RSS per million rows loaded", `**${f(rl.memory.peakMBPerMillionRows)} MB**`, ""]),
    );
  }
  return out.join("\n");
}
