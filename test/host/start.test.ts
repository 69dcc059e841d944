/**
 * `npm start` beside a running clean room refuses cleanly (the port, then the enclave's socket)
 * and leaves the running one working; an enclave that cannot produce evidence fails at start with
 * the platform's reason. Both run the compiled product from dist/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { outputOf } from "../child-output.js";

const DIST = join(import.meta.dirname, "../../dist");
const dir = mkdtempSync(join(tmpdir(), "cleanroom-start-"));
const running: ChildProcess[] = [];

afterAll(async () => {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGINT");
      await once(child, "exit");
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Runs `npm start` (dist/scripts/start.js); resolves with its stderr once it exits or says it runs. */
function start(
  port: number,
  workDir = dir,
): { child: ChildProcess; settled: Promise<{ code: number | null; err: string }> } {
  const child = spawn(process.execPath, [join(DIST, "scripts/start.js")], {
    env: { ...process.env, CLEANROOM_DIR: workDir, PORT: String(port) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  running.push(child);
  let err = "";
  const settled = new Promise<{ code: number | null; err: string }>((resolve) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("clean room running")) resolve({ code: null, err });
    });
    child.once("exit", (code) => resolve({ code, err }));
  });
  return { child, settled };
}

describe("npm start", () => {
  it("refuses beside a running clean room, which keeps working", async () => {
    const port = await freePort();
    const first = await start(port).settled;
    expect(first.err).toContain("clean room running");

    const samePort = await start(port).settled;
    expect(samePort.code).toBe(1);
    expect(samePort.err).toContain(`start refused: port ${port} is in use`);

    const sameDir = await start(await freePort()).settled;
    expect(sameDir.code).toBe(1);
    expect(sameDir.err).toContain(`an enclave is already running on ${join(dir, "enclave.sock")}`);

    // The first stack still answers, through its own host to its own enclave.
    const ready = await fetch(`http://127.0.0.1:${port}/api/v1/health/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { ready: boolean }).ready).toBe(true);
  }, 120_000);
});

describe("the enclave process", () => {
  it("fails at start with the platform's reason when it cannot produce evidence", async () => {
    // This machine is no SEV-SNP guest: configfs-tsm has no report interface here.
    const child = spawn(
      process.execPath,
      [join(DIST, "enclave/main.js"), "--listen", join(dir, "snp.sock"), "--platform", "sev-snp"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const { code, stdout, stderr } = await outputOf(child);
    expect(code).toBe(1);
    expect(stdout).toBe(""); // it never announced itself as listening
    expect(stderr).toMatch(
      /^enclave: failed to start \(ERR_PLATFORM: no attestation evidence from the platform \((unavailable|wrong-provider)(, E[A-Z]+)?\); see docs\/OPERATORS\.md/,
    );
  }, 60_000);
});
