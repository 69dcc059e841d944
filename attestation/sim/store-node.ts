/**
 * Node-only: reads and writes a simulated-platform directory (the layout of SIM_FILES), shared
 * by `cleanroom sim init` and the enclave's simulated provider. The secrets file is 0600.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createSimPlatform,
  exportSimPlatform,
  importSimPlatform,
  SIM_FILES,
  type SimPlatform,
} from "./platform.js";

/** Loads the platform from `dir`, creating and saving a new one there if it has none. */
export async function loadOrCreateSimPlatform(dir: string): Promise<SimPlatform> {
  const secrets = join(dir, SIM_FILES.secrets);
  if (existsSync(secrets)) return importSimPlatform(await readFile(secrets, "utf8"));
  const platform = await createSimPlatform();
  await saveSimPlatform(platform, dir);
  return platform;
}

export async function saveSimPlatform(platform: SimPlatform, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [name, text] of Object.entries(await exportSimPlatform(platform))) {
    const path = join(dir, name);
    await writeFile(path, text, { mode: name === SIM_FILES.secrets ? 0o600 : 0o644 });
    if (name === SIM_FILES.secrets) await chmod(path, 0o600);
  }
}
