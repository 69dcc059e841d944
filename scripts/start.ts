/**
 * `npm start`: the simulated enclave and the untrusted host on loopback, with a working
 * directory in .cleanroom/ so partners can point the CLI at it. Runs until Ctrl-C.
 *
 * It refuses to start beside a running clean room: when the host port is taken, or when an
 * enclave still answers on the working directory's socket (a second enclave would take the
 * socket over while its host failed to bind, and the first stack would seem to be the second).
 */
import { mkdirSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join, resolve } from "node:path";
import { SIM_FILES } from "../attestation/sim/platform.js";
import { startStack } from "./stack.js";

class StartRefused extends Error {}

/** Resolves when 127.0.0.1:`port` can be listened on; refuses with what to do otherwise. */
function portFree(port: number): Promise<void> {
  return new Promise((ok, refuse) => {
    const probe = createServer();
    probe.once("error", (e: NodeJS.ErrnoException) =>
      refuse(
        new StartRefused(
          e.code === "EADDRINUSE"
            ? `port ${port} is in use (another clean room, or another program): stop it, or start on another port with PORT=<n> npm start`
            : `cannot listen on 127.0.0.1:${port} (${e.code ?? "error"})`,
        ),
      ),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => ok()));
  });
}

/** Refuses when an enclave answers on `path` (a stale socket file is fine: it is replaced). */
function socketFree(path: string, dir: string): Promise<void> {
  return new Promise((ok, refuse) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      refuse(
        new StartRefused(
          `an enclave is already running on ${path}: stop that clean room (Ctrl-C where it runs), ` +
            `or use another working directory with CLEANROOM_DIR=<dir> (now ${dir})`,
        ),
      );
    });
    probe.once("error", () => ok());
  });
}

async function main(): Promise<void> {
  const dir = resolve(process.env["CLEANROOM_DIR"] ?? ".cleanroom");
  mkdirSync(dir, { recursive: true });
  const port = Number(process.env["PORT"] ?? 8080);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new StartRefused(`PORT must be a port number from 1 to 65535, not ${process.env["PORT"]}`);
  }
  await portFree(port);
  await socketFree(join(dir, "enclave.sock"), dir);
  const stack = await startStack({ dir, port, hostLog: "inherit" });
  const expected = join(stack.simDir, SIM_FILES.expected);
  process.stderr.write(
    `\nclean room running (simulated enclave)\n` +
      `  host API     ${stack.url}/api/v1   (OpenAPI: ${stack.url}/api/v1/openapi.json)\n` +
      `  health       ${stack.url}/api/v1/health/live (liveness), ${stack.url}/api/v1/health/ready (readiness)\n` +
      `  enclave      ${stack.enclaveSocket} (reachable only through the host)\n` +
      `  sim roots    ${join(stack.simDir, SIM_FILES.roots)}\n` +
      `  expected     ${expected}\n\n` +
      `next: cleanroom keygen --out me.json\n` +
      `      cleanroom attest --url ${stack.url} --contract contract.json --trust-sim-root ${join(stack.simDir, SIM_FILES.roots)} --measurement <from ${expected}>\n` +
      `  or run the whole two-party flow: npm run demo\n`,
  );
  const stop = () => void stack.stop().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((e: unknown) => {
  process.stderr.write(
    `${e instanceof StartRefused ? "start refused" : "start failed"}: ${(e as Error).message}\n`,
  );
  process.exit(1);
});
