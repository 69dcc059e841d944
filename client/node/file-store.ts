/** The party's state directory (default ~/.cleanroom): one JSON file per key, mode 0600. */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { UsageError } from "../../attestation/errors.js";
import type { StateStore } from "../sdk/state.js";

export function defaultStateDir(): string {
  return process.env.CLEANROOM_STATE ?? join(homedir(), ".cleanroom");
}

export class FileStateStore implements StateStore {
  readonly dir: string;

  constructor(dir = defaultStateDir()) {
    this.dir = resolve(dir);
  }

  #path(key: string): string {
    const p = resolve(this.dir, key);
    // Keys are built by the SDK, but a path outside the directory is refused all the same.
    if (!p.startsWith(this.dir + sep) || key.split("/").includes(".."))
      throw new UsageError("state: bad key");
    return p;
  }

  async get(key: string): Promise<string | undefined> {
    try {
      return await readFile(this.#path(key), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  /** Written to a temporary file and renamed, so a crash never leaves half a state file. */
  async set(key: string, value: string): Promise<void> {
    const p = this.#path(key);
    await mkdir(dirname(p), { recursive: true, mode: 0o700 });
    const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, value, { mode: 0o600 });
    await rename(tmp, p);
  }
}
