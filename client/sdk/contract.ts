/**
 * The contract from a party's side: read and validate it, compute the digest it approves, sign
 * the approval, and submit the contract with every party's approval.
 */
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { type AuditHead, isAuditHead } from "../../protocol/audit/entry.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import { signApproval } from "../../protocol/contract/sign.js";
import type { Contract } from "../../protocol/contract/types.js";
import { validateContractJson } from "../../protocol/contract/validate.js";
import { EnvelopeError } from "../../protocol/jose/errors.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { type Attested, attest, policyFingerprint } from "./attest.js";
import { checkContinuity } from "./continuity.js";
import type { HostClient } from "./http.js";
import { findParty, type PartyKeys } from "./keys.js";
import type { HostState } from "./state.js";

export { validateContractJson };

export async function contractDigestHex(contract: Contract): Promise<string> {
  return (await contractDigest(contract)).hex;
}

/** This party's approval JWS for `contract` (the party is found by its signing key). */
export function approveContract(contract: Contract, keys: PartyKeys): Promise<string> {
  return signApproval(contract, findParty(contract, keys).id, keys.privateKey);
}

export interface SubmitResult {
  digest: string;
  head: AuditHead;
  attested: Attested;
}

/**
 * Submits the contract and approvals, then attests that the enclave now holds exactly this
 * contract (its fresh evidence binds the digest) and verifies the enclave's signed answer with
 * the key that evidence vouches for. With `state`, first checks that the host's log still holds
 * the head this party saw (continuity.ts: nothing is sent to a reset clean room), and afterwards
 * caches that attestation and the new head.
 */
export async function submitContract(
  host: HostClient,
  contract: Contract,
  approvals: string[],
  policy: EvidencePolicy,
  state?: HostState,
): Promise<SubmitResult> {
  const digest = await contractDigestHex(contract);
  if (state) await checkContinuity(host, state);
  const reply = await host.postJson<{ response?: unknown }>("/contract", { contract, approvals });
  const attested = await attest(host, { policy, contractDigest: digest });
  const { body } = await verifyResponse<{ digest?: unknown; head?: unknown }>(
    String(reply?.response),
    attested.keys.signingKey,
  );
  if (body?.digest !== digest || !isAuditHead(body.head))
    throw new EnvelopeError("enclave accepted another contract");
  if (state) {
    await state.saveAttestation({
      policy: await policyFingerprint(policy),
      contractDigest: digest,
      keys: attested.keys,
      result: attested.result,
      verifiedAt: new Date().toISOString(),
    });
    await state.observeHead(body.head);
  }
  return { digest, head: body.head, attested };
}
