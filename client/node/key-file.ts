/** Party key files on disk: created with mode 0600 and never overwritten. */
import { readFile, writeFile } from "node:fs/promises";
import { generatePartyKeys, loadPartyKeys, type PartyKeyFile, type PartyKeys } from "../sdk/keys.js";

export async function writeNewKeyFile(path: string): Promise<PartyKeyFile> {
  const file = await generatePartyKeys();
  await writeFile(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  return file;
}

export async function readKeyFile(path: string): Promise<PartyKeys> {
  return loadPartyKeys(await readFile(path, "utf8"));
}
