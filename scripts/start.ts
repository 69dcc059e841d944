/**
 * `npm start`: the simulated enclave and the untrusted host on loopback, with a working
 * directory in .cleanroom/ so partners can point the CLI at it. Runs until Ctrl-C.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { SIM_FILES } from "../attestation/sim/platform.js";
import { startStack } from "./stack.js";

async function main(): Promise<void> {
  const dir = resolve(process.env["CLEANROOM_DIR"] ?? ".cleanroom");
  mkdirSync(dir, { recursive: true });
  const port = Number(process.env["PORT"] ?? 8080);
  const stack = await startStack({ dir, port, hostLog: "inherit" });
  const expected = join(stack.simDir, SIM_FILES.expected);
  process.stderr.write(
    `\nclean room running (simulated enclave)\n` +
      `  host API     ${stack.url}/api/v1   (OpenAPI: ${stack.url}/api/v1/openapi.json)\n` +
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
  process.stderr.write(`start failed: ${(e as Error).message}\n`);
  process.exit(1);
});
