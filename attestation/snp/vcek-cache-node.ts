/** Node-only: a directory of VCEK certificates, one DER file per cache key (hashed file name). */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { VcekCache } from "./endorsement.js";

export function directoryVcekCache(dir: string): VcekCache {
  const file = (key: string) => join(dir, `${createHash("sha256").update(key).digest("hex")}.der`);
  return {
    async get(key) {
      try {
        return new Uint8Array(await readFile(file(key)));
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") return undefined;
        throw e;
      }
    },
    async put(key, der) {
      await mkdir(dir, { recursive: true });
      await writeFile(file(key), der);
    },
  };
}
