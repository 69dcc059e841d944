/**
 * `npm run fuzz`: the four hardening suites at full size (100 000 cases per fuzz target, 20 000
 * for the audit log and evidence bundles, each case put to its target's oracle; the aggregation
 * grammar's 3 000 random queries checked for k per table, 400 judged against the two-dataset
 * judge and 10 000 forbidden-construct insertions; the whole attack corpus, end to end as well;
 * every fault; 200 concurrent sessions) through vitest, then a summary of the figures each suite
 * reported, seeds included (CLEANROOM_FUZZ_SEED repeats a run). Exits non-zero when any suite fails.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** dist/scripts/fuzz/main.js → the repository root. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const SUITES = ["test/fuzz", "test/attacks", "test/faults", "test/load"];

const figures = join(mkdtempSync(join(tmpdir(), "cleanroom-fuzz-")), "figures.jsonl");
const started = Date.now();
const run = spawnSync(join(ROOT, "node_modules/.bin/vitest"), ["run", ...SUITES, "--testTimeout=3600000"], {
  cwd: ROOT,
  stdio: "inherit",
  env: { ...process.env, CLEANROOM_HARDENING: "full", CLEANROOM_FIGURES: figures },
});

const lines = existsSync(figures)
  ? readFileSync(figures, "utf8")
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  : [];
console.log(`\nhardening figures (${Math.round((Date.now() - started) / 1000)} s, exit ${run.status})`);
for (const f of lines) {
  const { suite, name, ...rest } = f;
  const shown = Object.entries(rest)
    .filter(([k]) => k !== "codes")
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  console.log(`  ${String(suite).padEnd(10)} ${String(name).padEnd(26)} ${shown}`);
}
process.exit(run.status ?? 1);
