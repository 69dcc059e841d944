import { CompactSign } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { contractDigest } from "../../protocol/contract/digest.js";
import { ContractSignatureError } from "../../protocol/contract/errors.js";
import { APPROVAL_TYP, signApproval, verifyApprovals } from "../../protocol/contract/sign.js";
import type { Contract } from "../../protocol/contract/types.js";
import { clone, makeContract, makeParty, type TestParty } from "./fixtures.js";

let parties: TestParty[];
let contract: Contract;
let approvals: string[];

beforeAll(async () => {
  parties = [await makeParty("acme"), await makeParty("news"), await makeParty("broker")];
  contract = makeContract(parties);
  approvals = await Promise.all(parties.map((p) => signApproval(contract, p.id, p.privateKey)));
});

async function refusedFor(list: string[], c: Contract = contract): Promise<ContractSignatureError> {
  const e = await verifyApprovals(c, list).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(ContractSignatureError);
  expect((e as ContractSignatureError).code).toBe("ERR_CONTRACT_SIGNATURE");
  return e as ContractSignatureError;
}

/** Hand-made approval so tests can vary one field at a time. */
function rawApproval(key: CryptoKey, header: object, payload: object): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader(header as { alg: string })
    .sign(key);
}

describe("contract approvals", () => {
  it("accepts one valid approval per party, in any order", async () => {
    const out = await verifyApprovals(contract, [...approvals].reverse());
    expect(out.digest.hex).toBe((await contractDigest(contract)).hex);
    expect(out.approvals.map((a) => a.party)).toEqual(["acme", "news", "broker"]);
    expect(out.approvals.every((a) => a.contract === out.digest.hex)).toBe(true);
  });

  it("refuses a missing approval, naming the party", async () => {
    const e = await refusedFor([approvals[0]!, approvals[2]!]);
    expect(e.party).toBe("news");
    expect(e.message).toBe("party news: approval missing");
  });

  it("refuses a duplicate approval", async () => {
    const again = await signApproval(contract, "acme", parties[0]!.privateKey, { iat: 1 });
    expect((await refusedFor([...approvals, again])).party).toBe("acme");
  });

  it("refuses an approval signed with another party's key", async () => {
    const forged = await signApproval(contract, "news", parties[0]!.privateKey);
    const e = await refusedFor([approvals[0]!, forged, approvals[2]!]);
    expect(e.party).toBe("news");
    expect(e.message).toContain("signature does not verify");
  });

  it("refuses an approval over a different contract digest", async () => {
    const other = clone(contract);
    other.queries[0]!.policy.minDistinctIdentities = 60;
    const stale = await signApproval(other, "broker", parties[2]!.privateKey);
    const e = await refusedFor([approvals[0]!, approvals[1]!, stale]);
    expect(e.party).toBe("broker");
    expect(e.message).toContain("different contract");
  });

  it("refuses an approval whose payload names another party than its kid", async () => {
    const digest = (await contractDigest(contract)).hex;
    const odd = await rawApproval(
      parties[1]!.privateKey,
      { alg: "ES256", typ: APPROVAL_TYP, kid: "news" },
      { contract: digest, party: "acme", iat: 1 },
    );
    expect((await refusedFor([approvals[0]!, odd, approvals[2]!])).party).toBe("news");
  });

  it("refuses approvals with a wrong typ, an extra payload field, or a non-party signer", async () => {
    const digest = (await contractDigest(contract)).hex;
    const key = parties[1]!.privateKey;
    const wrongTyp = await rawApproval(
      key,
      { alg: "ES256", typ: "JWT", kid: "news" },
      { contract: digest, party: "news", iat: 1 },
    );
    expect((await refusedFor([approvals[0]!, wrongTyp, approvals[2]!])).approval).toBe(1);
    const extra = await rawApproval(
      key,
      { alg: "ES256", typ: APPROVAL_TYP, kid: "news" },
      { contract: digest, party: "news", iat: 1, scope: "all" },
    );
    expect((await refusedFor([approvals[0]!, extra, approvals[2]!])).message).toContain("malformed");
    const outsider = await makeParty("mallory");
    const stranger = await signApproval(contract, "mallory", outsider.privateKey);
    const e = await refusedFor([...approvals, stranger]);
    expect(e.party).toBeUndefined();
    expect(e.approval).toBe(3);
    expect(e.message).toBe("approvals[3]: unknown party");
  });
});
