// Reads vitest JSON reports (--reporter=json) and prints one line per report and a closing
// "tests: N passed, N failed, N skipped" over all of them. Exits 1 when any test failed, a report
// is missing or empty, or a test was skipped that .ci/expected-skips does not list (each named,
// with the reason its skip gave).
// Usage: node .ci/test-report.mjs REPORT.json [REPORT.json ...]
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const expected = new Set(
  readFileSync(join(root, ".ci/expected-skips"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#")),
);

let ok = true;
const total = { passed: 0, failed: 0, skipped: 0 };
const unexpected = [];
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.log(`${file}: no report (vitest did not finish)`);
    ok = false;
    continue;
  }
  const report = JSON.parse(readFileSync(file, "utf8"));
  const n = { passed: 0, failed: 0, skipped: 0 };
  for (const suite of report.testResults) {
    const path = relative(root, suite.name);
    // A file that fails to load has no test results, only a failed status.
    if (suite.status === "failed" && suite.assertionResults.every((t) => t.status !== "failed")) {
      console.log(`${path}: failed to run: ${suite.message}`);
      n.failed += 1;
    }
    for (const t of suite.assertionResults) {
      if (t.status === "passed") n.passed += 1;
      else if (t.status === "failed") n.failed += 1;
      else {
        n.skipped += 1;
        const name = [path, ...t.ancestorTitles, t.title].join(" > ");
        if (!expected.has(name)) unexpected.push(`${name} [${t.meta?.skipReason ?? t.status}]`);
      }
    }
  }
  if (n.passed + n.failed === 0) ok = false;
  console.log(`${file}: ${n.passed} passed, ${n.failed} failed, ${n.skipped} skipped`);
  for (const k of Object.keys(total)) total[k] += n[k];
}
if (unexpected.length > 0) {
  console.log(`unexpected skips (${unexpected.length}; .ci/expected-skips lists the accepted ones):`);
  for (const u of unexpected) console.log(`  ${u}`);
  ok = false;
}
console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(ok && total.failed === 0 ? 0 : 1);
