/**
 * Programs outside Node that some tests drive: the stock age CLI (interop), openssl (independent
 * certificate and report checks), python3 (the reference number parser). Each is looked up on
 * PATH. Where one is missing the tests that need it are skipped, each with a note naming the
 * program and its Debian package (shown by the reporter and kept in the JSON report's
 * `meta.skipReason`), and one notice per program goes to stderr. CI installs them all and
 * fails on any skip it does not expect (.ci/run).
 */
import { spawnSync } from "node:child_process";
import { beforeEach, type TestContext } from "vitest";

declare module "vitest" {
  interface TaskMeta {
    /** Why a test was skipped, for the JSON report CI reads. */
    skipReason?: string;
  }
}

/** Each program, the arguments that make it print its version, and the Debian package with it. */
const TOOLS = {
  age: { probe: ["--version"], debian: "age" },
  "age-keygen": { probe: ["--version"], debian: "age" },
  openssl: { probe: ["version"], debian: "openssl" },
  python3: { probe: ["-V"], debian: "python3" },
} as const;
export type Tool = keyof typeof TOOLS;

const found = new Map<Tool, boolean>();
const noticed = new Set<Tool>();

/** Whether `tool` runs from PATH here (probed once per process). */
export function hasTool(tool: Tool): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    ok = spawnSync(tool, TOOLS[tool].probe, { stdio: "ignore", timeout: 10_000 }).status === 0;
    found.set(tool, ok);
  }
  return ok;
}

/** The skip note when any of `tools` is missing, else undefined; prints one notice per missing program. */
export function missingTools(...tools: Tool[]): string | undefined {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0) return undefined;
  for (const t of missing) {
    if (noticed.has(t)) continue;
    noticed.add(t);
    process.stderr.write(
      `notice: ${t} is not on PATH; the tests that need it are skipped (Debian package: ${TOOLS[t].debian})\n`,
    );
  }
  const packages = [...new Set(missing.map((t) => TOOLS[t].debian))].join(" ");
  return `needs ${missing.join(", ")} on PATH (apt-get install ${packages})`;
}

/** Skips the running test, with the note, when any of `tools` is missing. */
export function skipWithout(ctx: TestContext, ...tools: Tool[]): void {
  const note = missingTools(...tools);
  if (note !== undefined) skipUnless(ctx, false, note);
}

/** Skips the running test with `note` unless `condition` (e.g. a program's version) holds. */
export function skipUnless(ctx: TestContext, condition: boolean, note: string): void {
  if (condition) return;
  ctx.task.meta.skipReason = note;
  ctx.skip(note);
}

/**
 * Called in a describe block (or at a file's top level): every test there is skipped, with the
 * note, when any of `tools` is missing. Returns whether they are all present, so setup hooks
 * that need them can do nothing otherwise.
 */
export function needsTool(...tools: Tool[]): boolean {
  if (missingTools(...tools) === undefined) return true;
  beforeEach((ctx) => skipWithout(ctx, ...tools));
  return false;
}
