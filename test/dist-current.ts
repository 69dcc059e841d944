/**
 * vitest globalSetup. Some suites run the compiled product from dist/ (the fault suite's enclave
 * process, the `npm run bench` smoke test), so before any test runs dist/ must match the sources:
 * when a source file is newer than its compiled output, or has none, dist/ is rebuilt with
 * `tsc -p tsconfig.build.json`. If it is still stale after that, the run stops and says why. A
 * clean clone is current already (`npm ci` runs `prepare`, which builds), so CI only pays the check.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BUILD_CONFIG = join(ROOT, "tsconfig.build.json");

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(path));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") && !e.name.endsWith(".test.ts"))
      out.push(path);
  }
  return out;
}

/**
 * Sources (relative to the root) whose dist/ output is missing or older than they are, leaving
 * out those changed at or after `since` (edited while a build ran: the next run builds them).
 */
function staleOutputs(since = Number.POSITIVE_INFINITY): string[] {
  const { include } = JSON.parse(readFileSync(BUILD_CONFIG, "utf8")) as { include: string[] };
  const stale: string[] = [];
  for (const dir of include) {
    for (const src of sources(join(ROOT, dir))) {
      const rel = relative(ROOT, src);
      const out = join(ROOT, "dist", rel.replace(/\.ts$/, ".js"));
      const changed = statSync(src).mtimeMs;
      if (changed >= since) continue;
      if (!existsSync(out) || statSync(out).mtimeMs < changed) stale.push(rel);
    }
  }
  return stale;
}

export default function setup(): void {
  const before = staleOutputs();
  if (before.length === 0) return;
  process.stderr.write(
    `dist/ is older than ${before.length} source file(s) (${before[0]}, ...): rebuilding\n`,
  );
  const started = Date.now();
  const tsc = spawnSync(
    process.execPath,
    [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", BUILD_CONFIG],
    { cwd: ROOT, encoding: "utf8" },
  );
  const after = staleOutputs(started);
  if (after.length > 0) {
    throw new Error(
      `dist/ is still older than ${after.join(", ")} after \`tsc -p tsconfig.build.json\`` +
        ` (exit ${tsc.status}):\n${tsc.stdout}${tsc.stderr}\nRun \`npm run build\` and fix what it reports.`,
    );
  }
  // tsc emits even with type errors; the build is current, and `npm run typecheck` reports them.
  if (tsc.status !== 0)
    process.stderr.write("dist/ rebuilt; tsc reported type errors (see npm run typecheck)\n");
}
