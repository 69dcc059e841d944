import { contractDigest } from "../contract/digest.js";
import type { Contract } from "../contract/types.js";
import { EnvelopeError, RequestAudienceError, RequestSignatureError, UnknownPartyError } from "./errors.js";
import { isBody } from "./lib/bodies.js";
import { importVerifyKey, readHeader, verifyCompact } from "./lib/jws.js";
import { HEX64, isPositiveSafeInteger, keysProblem, NONCE, parseJsonObject } from "./lib/shape.js";
import { REQUEST_KINDS, type RequestKind, type RequestPayload } from "./messages.js";
import type { ReplayGuard } from "./replay-guard.js";

const REQUEST_TYP = new RegExp(`^cleanroom-(${REQUEST_KINDS.join("|")})\\+jws$`);

export interface VerifyRequestOptions<K extends RequestKind> {
  /** Refuse any other kind (RequestSignatureError). */
  expectedKind?: K;
  /** The contract digest (hex) when the caller has it already; computed otherwise. */
  contractDigest?: string;
  /** This enclave instance's keys digest (hex): a request whose `aud` differs is refused. */
  audience: string;
}

/**
 * Verify a party request against the contract and record it in `guard`:
 * header {alg ES256, typ cleanroom-<kind>+jws, kid} → UnknownPartyError for a kid that is not a
 * party; signature with that party's contract key, typ/kind, party and contract digest →
 * RequestSignatureError; `aud` other than `audience` → RequestAudienceError; payload shape →
 * EnvelopeError; seq/nonce → ReplayError. The guard is only updated when everything else passed.
 */
export async function verifyRequest<K extends RequestKind = RequestKind>(
  jws: string,
  contract: Contract,
  guard: ReplayGuard,
  options: VerifyRequestOptions<K>,
): Promise<RequestPayload<K>> {
  const header = readHeader(jws, REQUEST_TYP, true);
  if (!header) throw new RequestSignatureError("not a cleanroom request");
  const kind = REQUEST_TYP.exec(header.typ)![1] as RequestKind;
  if (options.expectedKind !== undefined && kind !== options.expectedKind) {
    throw new RequestSignatureError("unexpected request kind");
  }
  const party = contract.parties.find((p) => p.id === header.kid);
  if (!party) throw new UnknownPartyError("signer is not a contract party");
  const bytes = await verifyCompact(jws, await importVerifyKey(party.signingKey));
  if (!bytes) throw new RequestSignatureError("signature does not verify");

  const p = parseJsonObject(bytes);
  if (!p || keysProblem(p, ["kind", "contract", "aud", "party", "seq", "nonce", "iat", "body"])) {
    throw new EnvelopeError("malformed request payload");
  }
  if (p.kind !== kind) throw new RequestSignatureError("payload kind does not match typ");
  if (p.party !== party.id) throw new RequestSignatureError("payload party does not match kid");
  const digest = options.contractDigest ?? (await contractDigest(contract)).hex;
  if (p.contract !== digest) throw new RequestSignatureError("request is for a different contract");
  if (typeof p.aud !== "string" || !HEX64.test(p.aud)) throw new EnvelopeError("malformed request payload");
  if (p.aud !== options.audience) throw new RequestAudienceError("request is for another enclave instance");
  if (
    !isPositiveSafeInteger(p.seq) ||
    typeof p.nonce !== "string" ||
    !NONCE.test(p.nonce) ||
    !Number.isSafeInteger(p.iat)
  ) {
    throw new EnvelopeError("malformed request payload");
  }
  if (!isBody(kind, p.body)) throw new EnvelopeError("malformed request body");
  guard.accept(party.id, p.seq, p.nonce);
  return p as unknown as RequestPayload<K>;
}
