/**
 * The enclave process's last resort (enclave/main.ts): an error nothing caught, thrown or
 * rejected, ends the process with a non-zero status and one line naming its code, never its
 * message or stack, which can quote data. The real dist/enclave/main.js runs as a child; a
 * preloaded module throws as soon as main.js has installed its handlers.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildOutput, outputOf } from "../child-output.js";
import { ensureBuilt } from "../faults/process.js";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "dist/enclave/main.js");
const SECRET = "row 7 alice@example.com 98765.43";

/** Throws (or rejects) once a handler for uncaught errors is installed, i.e. from main.js on. */
const PRELOAD = `
const how = process.env.LAST_RESORT;
const timer = setInterval(() => {
  if (process.listenerCount("uncaughtException") === 0) return;
  clearInterval(timer);
  const e = new Error(${JSON.stringify(SECRET)});
  if (how === "coded") e.code = "ERR_QUERY_FAILED";
  if (how === "data-code") e.code = ${JSON.stringify(SECRET)};
  if (how === "reject") Promise.reject(e);
  else throw e;
}, 1);
`;

let dir: string;
beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "cleanroom-last-resort-"));
  writeFileSync(join(dir, "preload.mjs"), PRELOAD);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(how: string): Promise<ChildOutput> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      pathToFileURL(join(dir, "preload.mjs")).href,
      MAIN,
      "--listen",
      join(dir, `${how}.sock`),
      "--platform",
      "sim",
      "--sim-dir",
      join(dir, "sim"),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LAST_RESORT: how } },
  );
  return outputOf(child);
}

describe("the enclave's last-resort handler", () => {
  it("prints only ERR_INTERNAL for an uncaught error without a code, and exits non-zero", async () => {
    const r = await run("throw");
    expect(r.stderr).toBe("enclave: fatal (ERR_INTERNAL)\n");
    expect(r.code).toBe(70);
    expect(r.stdout).not.toContain("alice");
  });

  it("prints only the code of an unhandled rejection", async () => {
    const r = await run("coded");
    expect(r.stderr).toBe("enclave: fatal (ERR_QUERY_FAILED)\n");
    expect(r.code).toBe(70);
  });

  it("prints ERR_INTERNAL when the code itself is not code-shaped (it could be data)", async () => {
    const r = await run("data-code");
    expect(r.stderr).toBe("enclave: fatal (ERR_INTERNAL)\n");
    expect(r.code).toBe(70);
  });

  it("handles a rejected promise nothing awaits", async () => {
    const r = await run("reject");
    expect(r.stderr).toBe("enclave: fatal (ERR_INTERNAL)\n");
    expect(r.code).toBe(70);
  });
});
