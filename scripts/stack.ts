/**
 * Starts the local product as two processes, as it is deployed: the enclave (simulated
 * platform) on a unix socket, and the untrusted host on loopback HTTP relaying to it. Used by
 * `npm start`, the demo and the benchmarks; the host process never loads enclave code.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const DIST = dirname(dirname(fileURLToPath(import.meta.url)));

export interface Stack {
  url: string;
  enclaveSocket: string;
  simDir: string;
  storeDir: string;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Working directory for the socket, simulated platform and host store; default a temp dir. */
  dir?: string;
  /** Host port on 127.0.0.1; default a free one. */
  port?: number;
  /** Where the host's JSON logs go; default discarded. */
  hostLog?: "inherit" | "ignore";
  memoryLimit?: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once the process prints a line (the enclave announces itself) or the URL answers. */
function waitFor(child: ChildProcess, ready: () => Promise<boolean>, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const fail = (why: string) => {
      if (!done) reject(new Error(`${what} ${why}`));
      done = true;
    };
    child.once("exit", (code) => fail(`exited with status ${code}`));
    const deadline = Date.now() + 60_000;
    const poll = async () => {
      while (!done && Date.now() < deadline) {
        if (await ready().catch(() => false)) {
          done = true;
          resolve();
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      fail("did not become ready within 60 s");
    };
    void poll();
  });
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "cleanroom-"));
  const simDir = join(dir, "sim");
  const storeDir = join(dir, "host-store");
  mkdirSync(storeDir, { recursive: true });
  const enclaveSocket = join(dir, "enclave.sock");
  const port = o.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;

  const enclave = spawn(
    process.execPath,
    [
      join(DIST, "enclave/main.js"),
      ...["--listen", enclaveSocket, "--platform", "sim", "--sim-dir", simDir],
      ...(o.memoryLimit ? ["--memory-limit", o.memoryLimit] : []),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let announced = false;
  enclave.stdout?.on("data", () => {
    announced = true;
  });
  const host = spawn(
    process.execPath,
    [
      join(DIST, "host/main.js"),
      ...["--listen", `127.0.0.1:${port}`, "--enclave", `unix:${enclaveSocket}`, "--store", storeDir],
    ],
    { stdio: ["ignore", o.hostLog ?? "ignore", "inherit"] },
  );
  const stop = async () => {
    for (const child of [host, enclave]) {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    }
  };
  try {
    await waitFor(enclave, async () => announced, "enclave");
    await waitFor(
      host,
      async () => {
        const r = await fetch(`${url}/api/v1/health`);
        return r.ok && ((await r.json()) as { ok?: boolean }).ok === true;
      },
      "host",
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, enclaveSocket, simDir, storeDir, stop };
}
