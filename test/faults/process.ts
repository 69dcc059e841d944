/**
 * The enclave as a real child process (dist/enclave/main.js, built by `npm ci`), so a fault is a
 * real SIGKILL: no finally blocks, no flushed buffers. The host runs in this process and keeps
 * its store across enclave restarts; its own restart is a close and a rebuild on the same store.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { request } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "dist/enclave/main.js");

/** CI builds dist in `npm ci`; a fresh checkout without it is built once here. */
export function ensureBuilt(): void {
  if (!existsSync(MAIN))
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
}

export interface EnclaveProcess {
  child: ChildProcess;
  kill(): Promise<void>;
}

export async function spawnEnclave(socket: string, simDir: string): Promise<EnclaveProcess> {
  const child = spawn(
    process.execPath,
    [MAIN, "--listen", socket, "--platform", "sim", "--sim-dir", simDir],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`enclave exited with ${code}`)));
    child.stdout!.once("data", () => resolve());
  });
  child.removeAllListeners("exit");
  return {
    child,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

/** A JSON call straight to the enclave's socket (what an operator's restore step does). */
export function enclaveCall(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, method, path, headers: { "content-type": "application/json" } },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (b: Buffer) => parts.push(b));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(parts).toString("utf8") || "null"),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
