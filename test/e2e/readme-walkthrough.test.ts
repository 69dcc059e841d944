/**
 * The README's CLI walk-through, run as written: the shell block between its walkthrough markers
 * is taken from README.md at test time (never copied here) and run by bash, stopping at the first
 * command that fails, in a new temporary folder laid out as the README says (a project folder
 * whose `.cleanroom/` is the running local stack), with `cleanroom` on the PATH as `npm link`
 * puts it there. Only the environment is set here: the stack's URL (CLEANROOM_URL, which
 * `cleanroom init` writes when no --url is given) and a private state directory and HOME.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Contract } from "../../protocol/contract/types.js";
import { type ChildOutput, outputOf } from "../child-output.js";
import { startTestStack, type TestStack } from "./stack.js";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const CLI = join(ROOT, "dist/client/cli/main.js");

/** The shell blocks between the README's walkthrough markers, in order. */
function walkthroughScript(readme: string): string {
  const start = readme.indexOf("<!-- walkthrough:start -->");
  const end = readme.indexOf("<!-- walkthrough:end -->");
  if (start < 0 || end < start) throw new Error("README.md has no walkthrough markers");
  const blocks = [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  if (!blocks.length) throw new Error("README.md walkthrough has no sh block");
  return blocks.join("\n");
}

function runBash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<ChildOutput> {
  return outputOf(spawn("bash", ["-euo", "pipefail", "-x", "-c", script], { cwd, env }));
}

let stack: TestStack;
let project: string;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  stack = await startTestStack({ record: false });
  project = await mkdtemp(join(tmpdir(), "cleanroom-readme-"));
  // The project folder of the README: `.cleanroom/` is where `npm start` keeps its stack.
  await symlink(stack.dir, join(project, ".cleanroom"));
  const bin = join(project, ".bin");
  await mkdir(bin);
  await writeFile(join(bin, "cleanroom"), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  await chmod(join(bin, "cleanroom"), 0o755);
});

afterAll(async () => {
  await stack?.stop();
  if (project) await rm(project, { recursive: true, force: true });
});

describe("README walk-through", () => {
  it("runs as written from a clean folder", async () => {
    const script = walkthroughScript(await readFile(join(ROOT, "README.md"), "utf8"));
    // The markers hold the flow, not an empty or truncated block.
    for (const step of [
      "keygen",
      "contract init",
      "init --profile",
      "upload",
      "grant",
      "query",
      "results get",
    ]) {
      expect(script).toContain(`cleanroom ${step}`);
    }
    const env: NodeJS.ProcessEnv = {
      PATH: `${join(project, ".bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      HOME: project,
      CLEANROOM_URL: stack.url.replace(/\/$/, ""),
      CLEANROOM_STATE: join(project, "state"),
    };
    const r = await runBash(script, project, env);
    // bash -x traces each command on stderr: the last trace line names the one that failed.
    expect(r.code, `walk-through failed:\n${r.stderr.slice(-4000)}`).toBe(0);

    const walk = join(project, "walk");
    const config = JSON.parse(await readFile(join(walk, "cleanroom.json"), "utf8"));
    expect(Object.keys(config.profiles).sort()).toEqual(["advertiser", "publisher"]);
    // Both verifications passed (online attest, offline verify of the saved bundle).
    expect(r.stdout.match(/^VERIFIED$/gm)?.length).toBe(2);
    // The closed-loop result came out as CSV, the co-recipient's copy as typed JSON.
    expect(r.stdout).toMatch(/^arm,users,converters$/m);
    const json = r.stdout.split("\n").find((line) => line.startsWith('{"columns":[{"name":"segment"'));
    expect(json, "results get --format json printed no result").toBeDefined();
    const result = JSON.parse(json!) as { columns: { type: string }[]; rows: unknown[][] };
    expect(result.columns.map((c) => c.type)).toEqual(["VARCHAR", "BIGINT", "BIGINT"]);
    for (const row of result.rows) expect(typeof row[1]).toBe("number");
    // Status saw both loads and the DP run's charge.
    expect(r.stdout).toMatch(/advertiser_purchases\s+loaded: \d+ rows/);
    expect(r.stdout).toMatch(/publisher_exposures\s+loaded: \d+ rows/);
    // Runs and budget left, from what the walk-through ran and what its contract declares.
    const contract = JSON.parse(await readFile(join(walk, "contract.json"), "utf8")) as Contract;
    const maxRuns = contract.queries.find((q) => q.id === "closed-loop")!.policy.maxRuns!;
    expect(r.stdout).toMatch(new RegExp(`closed-loop +1 run, ${maxRuns - 1} of ${maxRuns} left`));
    const dp = contract.queries.find((q) => q.id === "last-touch")!.policy.dp!;
    expect(r.stdout).toContain(
      `advertiser: ${dp.budget - dp.epsilon} of ${dp.budget} left (${dp.epsilon} spent)`,
    );
    expect(r.stdout).toMatch(/^✓ \d+ entries verified; head \d+ [0-9a-f]{64}$/m);
  });
});
