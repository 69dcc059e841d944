import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildHost, type HostOptions } from "../../host/app.js";

export const sha256hex = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

export interface TestHost {
  app: FastifyInstance;
  dir: string;
  close(): Promise<void>;
}

/** A host on a fresh temporary store; `close` removes it. */
export async function startHost(
  enclave: HostOptions["enclave"],
  extra: Partial<HostOptions> = {},
  dir?: string,
): Promise<TestHost> {
  const storeDir = dir ?? (await mkdtemp(join(tmpdir(), "host-test-")));
  const app = await buildHost({ enclave, storeDir, logger: false, ...extra });
  await app.ready();
  return {
    app,
    dir: storeDir,
    async close() {
      await app.close();
      if (!dir) await rm(storeDir, { recursive: true, force: true });
    },
  };
}
