/**
 * The parties' approvals of a contract, as the console collects them before submission: one file
 * per party in an approvals folder (`<party>.approval.jws`), which the parties share the way they
 * share the contract itself (a shared folder, or files sent to each other). Every approval is
 * verified against the contract's digest and the signing key the contract names for its party
 * before it counts; a file that does not verify is ignored, whatever its name says.
 */
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { APPROVAL_TYP, type ApprovalPayload } from "../../protocol/contract/sign.js";
import type { Contract } from "../../protocol/contract/types.js";
import { importVerifyKey, readHeader, verifyCompact } from "../../protocol/jose/lib/jws.js";
import { keysProblem, parseJsonObject } from "../../protocol/jose/lib/shape.js";
import { ConsoleRequestError } from "./errors.js";

/** An approval JWS is a few hundred bytes; anything much larger is not one. */
const MAX_APPROVAL_BYTES = 16 * 1024;
const FILE = /^([a-z][a-z0-9_-]{0,63})\.approval\.jws$/;

export interface VerifiedApproval {
  party: string;
  jws: string;
  payload: ApprovalPayload;
}

/** The approval's payload when `jws` is `party`'s valid approval of the contract with `digest`. */
export async function verifyOneApproval(
  contract: Contract,
  digest: string,
  jws: string,
): Promise<VerifiedApproval | undefined> {
  const header = readHeader(jws, APPROVAL_TYP, true);
  const party = contract.parties.find((p) => p.id === header?.kid);
  if (!party) return undefined;
  const bytes = await verifyCompact(jws, await importVerifyKey(party.signingKey));
  if (!bytes) return undefined;
  const p = parseJsonObject(bytes);
  if (!p || keysProblem(p, ["contract", "party", "iat"])) return undefined;
  if (p.party !== party.id || p.contract !== digest || !Number.isSafeInteger(p.iat)) return undefined;
  return { party: party.id, jws, payload: p as unknown as ApprovalPayload };
}

export class ApprovalFolder {
  constructor(
    readonly dir: string,
    readonly contract: Contract,
    readonly digest: string,
  ) {}

  /** The verified approvals of this contract found in the folder, one per party at most. */
  async list(): Promise<Map<string, VerifiedApproval>> {
    const out = new Map<string, VerifiedApproval>();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
      throw e;
    }
    for (const name of names.sort()) {
      if (!FILE.test(name)) continue;
      const text = await readFile(join(this.dir, name), "utf8").catch(() => "");
      if (text.length === 0 || text.length > MAX_APPROVAL_BYTES) continue;
      const v = await verifyOneApproval(this.contract, this.digest, text.trim());
      if (v) out.set(v.party, v);
    }
    return out;
  }

  /** Verifies `jws` and keeps it as its party's approval (replacing an older one). */
  async add(jws: string): Promise<VerifiedApproval> {
    const text = jws.trim();
    if (text.length === 0 || text.length > MAX_APPROVAL_BYTES) {
      throw new ConsoleRequestError("an approval is one compact JWS, as cleanroom contract sign prints it");
    }
    const v = await verifyOneApproval(this.contract, this.digest, text);
    if (!v) {
      throw new ConsoleRequestError(
        `not a valid approval of contract ${this.contract.id} (digest ${this.digest.slice(0, 16)}…) by one of its parties (${this.contract.parties.map((p) => p.id).join(", ")})`,
      );
    }
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${v.party}.approval.jws`);
    // Written aside and renamed, so another party's console never reads half a file.
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, `${text}\n`, { mode: 0o644 });
    await rename(tmp, path);
    return v;
  }
}
