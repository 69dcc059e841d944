/**
 * Contract approvals: each party signs the contract digest with its contract signing key.
 *
 * Approval = compact JWS, protected header {"alg":"ES256","typ":"cleanroom-approval+jws","kid":<party id>},
 * payload {"contract": <digest hex>, "party": <party id>, "iat": <seconds>}.
 */
import { importVerifyKey, readHeader, signCompact, verifyCompact } from "../jose/lib/jws.js";
import { HEX64, keysProblem, parseJsonObject } from "../jose/lib/shape.js";
import { contractDigest, type Digest } from "./digest.js";
import { ContractSignatureError } from "./errors.js";
import type { Contract } from "./types.js";

export const APPROVAL_TYP = "cleanroom-approval+jws";

export interface ApprovalPayload {
  contract: string;
  party: string;
  iat: number;
}

/** Sign `contract` as `partyId` with that party's ES256 private key. */
export async function signApproval(
  contract: Contract,
  partyId: string,
  privateKey: CryptoKey,
  options: { iat?: number } = {},
): Promise<string> {
  const payload: ApprovalPayload = {
    contract: (await contractDigest(contract)).hex,
    party: partyId,
    iat: options.iat ?? Math.floor(Date.now() / 1000),
  };
  return signCompact(
    new TextEncoder().encode(JSON.stringify(payload)),
    { alg: "ES256", typ: APPROVAL_TYP, kid: partyId },
    privateKey,
  );
}

export interface VerifiedApprovals {
  digest: Digest;
  /** One verified approval per contract party, in the contract's party order. */
  approvals: ApprovalPayload[];
}

/**
 * Succeeds only when every party of the (already validated) contract has exactly one approval,
 * signed with its own contract key, over this contract's digest. Throws ContractSignatureError
 * naming the party (or the approval index when the signer cannot be attributed to a party).
 */
export async function verifyApprovals(
  contract: Contract,
  approvals: readonly string[],
): Promise<VerifiedApprovals> {
  const digest = await contractDigest(contract);
  const byParty = new Map<string, ApprovalPayload>();
  for (const [i, jws] of approvals.entries()) {
    const header = readHeader(jws, APPROVAL_TYP, true);
    if (!header) throw new ContractSignatureError({ approval: i }, "not an approval");
    const party = contract.parties.find((p) => p.id === header.kid);
    if (!party) throw new ContractSignatureError({ approval: i }, "unknown party");
    if (byParty.has(party.id))
      throw new ContractSignatureError({ party: party.id }, "more than one approval");
    const bytes = await verifyCompact(jws, await importVerifyKey(party.signingKey));
    if (!bytes) throw new ContractSignatureError({ party: party.id }, "signature does not verify");
    const p = parseJsonObject(bytes);
    if (!p || keysProblem(p, ["contract", "party", "iat"])) {
      throw new ContractSignatureError({ party: party.id }, "malformed approval payload");
    }
    if (p.party !== party.id)
      throw new ContractSignatureError({ party: party.id }, "approval names another party");
    if (typeof p.contract !== "string" || !HEX64.test(p.contract) || p.contract !== digest.hex) {
      throw new ContractSignatureError({ party: party.id }, "approval is for a different contract");
    }
    if (!Number.isSafeInteger(p.iat))
      throw new ContractSignatureError({ party: party.id }, "malformed approval payload");
    byParty.set(party.id, p as unknown as ApprovalPayload);
  }
  return {
    digest,
    approvals: contract.parties.map((p) => {
      const a = byParty.get(p.id);
      if (!a) throw new ContractSignatureError({ party: p.id }, "approval missing");
      return a;
    }),
  };
}
