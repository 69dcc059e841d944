/**
 * The sealed histories of the enclave's differencing guard (enclave/guard-seal.ts), kept by the
 * host so a restarted enclave can continue them. Each is opaque ciphertext named by its SHA-256,
 * which the query-run audit entry that produced it carries; the host hands them all back with a
 * restore and the enclave uses only those its verified chain names.
 *
 *   guard/<sha256 hex>    one sealed history per query run that released guarded rows
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EnclaveProtocolError } from "./errors.js";

const NAME = /^[0-9a-f]{64}$/;
/** One sealed history is one run's released people sets: bounded far below this. */
const MAX_HISTORY_BYTES = 512 * 1024 * 1024;

export class GuardHistoryStore {
  private constructor(private readonly dir: string) {}

  static async open(root: string): Promise<GuardHistoryStore> {
    const dir = join(root, "guard");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new GuardHistoryStore(dir);
  }

  /** Keeps one sealed history (base64 as the enclave answered it); returns its digest. */
  async save(base64: unknown): Promise<string> {
    if (typeof base64 !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64))
      throw new EnclaveProtocolError();
    const bytes = Buffer.from(base64, "base64");
    if (bytes.length === 0 || bytes.length > MAX_HISTORY_BYTES) throw new EnclaveProtocolError();
    const digest = createHash("sha256").update(bytes).digest("hex");
    const tmp = join(this.dir, `.${digest}.tmp`);
    await writeFile(tmp, bytes, { mode: 0o600 });
    await rename(tmp, join(this.dir, digest));
    return digest;
  }

  /** Every stored history, base64 by digest: what a restore hands the enclave. */
  async all(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const name of (await readdir(this.dir)).sort()) {
      if (NAME.test(name)) out[name] = (await readFile(join(this.dir, name))).toString("base64");
    }
    return out;
  }
}
