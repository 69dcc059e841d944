/**
 * Which upload a party made last for each of its datasets at a host, so that `grant` can default
 * to it. Kept beside the other per-host state (state.ts), as one small JSON file per dataset.
 */
import type { HostState } from "./state.js";

export interface DatasetUpload {
  dataset: string;
  /** SHA-256 (hex) of the uploaded age file. */
  digest: string;
  /** The plaintext file it came from, as given on the command line. */
  file: string;
  at: string;
}

const key = (state: HostState, dataset: string) => `${state.prefix}/datasets/${dataset}.json`;

export async function rememberUpload(state: HostState, u: DatasetUpload): Promise<void> {
  await state.store.set(key(state, u.dataset), `${JSON.stringify(u, null, 2)}\n`);
}

export async function lastUpload(state: HostState, dataset: string): Promise<DatasetUpload | undefined> {
  const text = await state.store.get(key(state, dataset));
  if (text === undefined) return undefined;
  try {
    const u = JSON.parse(text) as DatasetUpload;
    return u?.dataset === dataset && typeof u.digest === "string" && /^[0-9a-f]{64}$/.test(u.digest)
      ? u
      : undefined;
  } catch {
    return undefined;
  }
}
