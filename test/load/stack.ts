/** A two-party collaboration with both use-case datasets loaded, for the hardening suites. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { grant, uploadFile } from "../../client/node/index.js";
import { type Collaboration, DATASETS, startCollaboration } from "../../scripts/demo/flow.js";
import { useCaseRows } from "../../scripts/demo/usecases.js";

/** Both parties approve, submit, upload and grant their use-case data. */
export async function loadedCollaboration(
  url: string,
  simDir: string,
  dir: string,
  identities = 300,
): Promise<Collaboration> {
  const c = await startCollaboration(url, simDir);
  for (const { owner, dataset, rows } of DATASETS) {
    const file = join(dir, `${dataset.id}.csv`);
    writeFileSync(file, [...useCaseRows(rows, { identities })].join(""));
    const up = await uploadFile(c.clients[owner], file);
    await grant(c.clients[owner], { dataset: dataset.id, ciphertextDigest: up.digest });
  }
  return c;
}
