/** `datasets[i].maxInvalidIdentityShare`: validated, with a safe default (docs/INGEST.md). */
import { beforeAll, describe, expect, it } from "vitest";
import { ContractError } from "../../protocol/contract/errors.js";
import {
  type Contract,
  DEFAULT_MAX_INVALID_IDENTITY_SHARE,
  MAX_INVALID_IDENTITY_SHARE,
} from "../../protocol/contract/types.js";
import { validateContract } from "../../protocol/contract/validate.js";
import { clone, makeContract, makeParty } from "./fixtures.js";

let valid: Contract;
beforeAll(async () => {
  valid = makeContract([await makeParty("acme"), await makeParty("news_co")]);
});

/** The fixture with dataset 0's identity format ("absent": none) and share set as given. */
function withShare(share: unknown, format: unknown = "sha256-hex"): unknown {
  const c = clone(valid) as unknown as { datasets: Record<string, unknown>[] };
  if (format === "absent") delete c.datasets[0]!.identityFormat;
  else c.datasets[0]!.identityFormat = format;
  c.datasets[0]!.maxInvalidIdentityShare = share;
  return c;
}

function refusal(doc: unknown): ContractError {
  try {
    validateContract(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(ContractError);
    return e as ContractError;
  }
  throw new Error("expected a ContractError");
}

describe("maxInvalidIdentityShare", () => {
  it("defaults to refusing any invalid identity, and is absent unless set", () => {
    expect(DEFAULT_MAX_INVALID_IDENTITY_SHARE).toBe(0);
    expect(validateContract(valid).datasets[0]).not.toHaveProperty("maxInvalidIdentityShare");
  });

  it("accepts a share from 0 to the maximum under sha256-hex", () => {
    for (const share of [0, 0.001, 0.25, MAX_INVALID_IDENTITY_SHARE]) {
      expect(validateContract(withShare(share)).datasets[0]!.maxInvalidIdentityShare).toBe(share);
    }
  });

  it("refuses a share out of range, not a number, or without a format that makes identities invalid", () => {
    for (const [share, reason] of [
      [-0.01, `must be from 0 to ${MAX_INVALID_IDENTITY_SHARE}`],
      [MAX_INVALID_IDENTITY_SHARE + 0.01, `must be from 0 to ${MAX_INVALID_IDENTITY_SHARE}`],
      [1, `must be from 0 to ${MAX_INVALID_IDENTITY_SHARE}`],
      ["0.1", "not a finite number"],
      [Number.NaN, "not a finite number"],
    ] as const) {
      const e = refusal(withShare(share));
      expect([e.path, e.reason], String(share)).toEqual(["datasets[0].maxInvalidIdentityShare", reason]);
    }
    for (const format of ["any", "absent"]) {
      const e = refusal(withShare(0.1, format));
      expect([e.path, e.reason]).toEqual([
        "datasets[0].maxInvalidIdentityShare",
        'only with identityFormat "sha256-hex"',
      ]);
    }
  });
});
