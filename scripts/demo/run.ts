/**
 * `npm run demo`: starts its own stack (simulated enclave + untrusted host), then an advertiser
 * and a publisher with generated data run the whole partner flow and print the answers.
 *   node dist/scripts/demo/run.js [--identities N] [--seed N]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { startStack } from "../stack.js";
import { type FlowResult, runPartnerFlow } from "./flow.js";

function positive(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("a positive integer");
  return n;
}

function table(columns: string[], rows: unknown[][]): string {
  const cells = [columns, ...rows.map((r) => r.map((v) => String(v ?? "")))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => `  ${r.map((c, i) => c.padStart(widths[i]!)).join("  ")}`;
  return [
    line(cells[0]!),
    `  ${widths.map((w) => "─".repeat(w)).join("  ")}`,
    ...cells.slice(1).map(line),
  ].join("\n");
}

function print(r: FlowResult): void {
  for (const res of r.results) {
    process.stdout.write(
      `\n${res.run.queryId} (run by ${res.run.runner}${Object.keys(res.run.params).length ? `, ${JSON.stringify(res.run.params)}` : ""})` +
        `${res.epsilon ? `, differentially private (epsilon ${res.epsilon} charged to each recipient)` : ""}` +
        `\n${table(res.columns, res.rows)}\n`,
    );
  }
  process.stdout.write(
    `\naudit log: ${r.auditEntries} entries, every signature and link verified by both parties\n` +
      `enclave: ${r.simulated ? "simulated platform" : "hardware"}, measurement ${r.measurement.slice(0, 24)}…\n`,
  );
}

async function main(): Promise<void> {
  const o = new Command("demo")
    .option(
      "--identities <n>",
      "publisher users (the advertiser has about 1.1× as many customers, a third of them shared)",
      positive,
      100_000,
    )
    .option("--seed <n>", "data seed", positive, 1)
    .parse(process.argv)
    .opts<{ identities: number; seed: number }>();
  const dir = mkdtempSync(join(tmpdir(), "cleanroom-demo-"));
  const t0 = performance.now();
  process.stdout.write("starting the simulated enclave and the untrusted host…\n");
  const stack = await startStack({ dir });
  try {
    process.stdout.write(`host ${stack.url} ↔ enclave ${stack.enclaveSocket}\n`);
    const result = await runPartnerFlow({
      url: stack.url,
      simDir: stack.simDir,
      workDir: dir,
      identities: o.identities,
      seed: o.seed,
      log: (l) => process.stdout.write(`${l}\n`),
    });
    print(result);
    process.stdout.write(`\ndone in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  const err = e as { code?: string; message?: string };
  process.stderr.write(`demo failed: ${err.code ?? "error"}: ${err.message ?? String(e)}\n`);
  process.exit(1);
});
