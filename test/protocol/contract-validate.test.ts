import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ContractError } from "../../protocol/contract/errors.js";
import type { Contract } from "../../protocol/contract/types.js";
import { CONTRACT_LIMITS, validateContract, validateContractJson } from "../../protocol/contract/validate.js";
import { clone, makeContract, makeParty } from "./fixtures.js";

// biome-ignore lint/suspicious/noExplicitAny: tests poke arbitrary JSON into the document
type Any = any;

let valid: Contract;
beforeAll(async () => {
  valid = makeContract([await makeParty("acme"), await makeParty("news_co")]);
});

function refusal(mutate: (c: Any) => void): ContractError {
  const c = clone(valid) as Any;
  mutate(c);
  try {
    validateContract(c);
  } catch (e) {
    expect(e).toBeInstanceOf(ContractError);
    return e as ContractError;
  }
  throw new Error("expected a ContractError");
}

describe("validateContract", () => {
  it("accepts the fixture and returns an equal fresh copy", () => {
    const out = validateContract(valid);
    expect(out).toEqual(valid);
    expect(out).not.toBe(valid);
    expect(out.parties[0]).not.toBe(valid.parties[0]);
  });

  it("accepts JSON text and refuses oversized or invalid text", () => {
    expect(validateContractJson(JSON.stringify(valid))).toEqual(valid);
    expect(() => validateContractJson("{")).toThrow(ContractError);
    const big = " ".repeat(CONTRACT_LIMITS.jsonBytes + 1);
    expect(() => validateContractJson(big)).toThrowError(/^contract: too large$/);
  });

  const cases: [string, (c: Any) => void, string, string][] = [
    ["unknown top field", (c) => (c.extra = 1), "contract", "unknown field"],
    ["missing queries", (c) => delete c.queries, "contract", "missing field queries"],
    ["version 2", (c) => (c.version = 2), "version", "unsupported value"],
    ["bad contract id", (c) => (c.id = "Acme News"), "id", "not a valid contract id"],
    ["no parties", (c) => (c.parties = []), "parties", "empty"],
    ["bad party id", (c) => (c.parties[1].id = "9news"), "parties[1].id", "not a valid party id"],
    ["duplicate party id", (c) => (c.parties[1].id = c.parties[0].id), "parties[1].id", "duplicate"],
    [
      "shared signing key",
      (c) => (c.parties[1].signingKey = c.parties[0].signingKey),
      "parties[1].signingKey",
      "duplicate",
    ],
    ["party unknown field", (c) => (c.parties[0].role = "admin"), "parties[0]", "unknown field"],
    ["name with control char", (c) => (c.parties[0].name = "a\nb"), "parties[0].name", "control character"],
    [
      "private JWK",
      (c) => (c.parties[0].signingKey.d = "AAAA"),
      "parties[0].signingKey",
      "private key material",
    ],
    ["RSA JWK", (c) => (c.parties[0].signingKey.kty = "RSA"), "parties[0].signingKey.kty", "must be EC"],
    [
      "P-384 JWK",
      (c) => (c.parties[0].signingKey.crv = "P-384"),
      "parties[0].signingKey.crv",
      "must be P-256",
    ],
    [
      "short x",
      (c) => (c.parties[0].signingKey.x = "AAAA"),
      "parties[0].signingKey.x",
      "not a valid P-256 coordinate",
    ],
    [
      "JWK extra member",
      (c) => (c.parties[0].signingKey.key_ops = ["verify"]),
      "parties[0].signingKey",
      "unknown field",
    ],
    [
      "JWK alg RS256",
      (c) => (c.parties[0].signingKey.alg = "RS256"),
      "parties[0].signingKey.alg",
      "must be ES256",
    ],
    [
      "bad age recipient",
      (c) => (c.parties[1].ageRecipient = "age1bbbb"),
      "parties[1].ageRecipient",
      "not a valid age recipient",
    ],
    ["no datasets", (c) => (c.datasets = []), "datasets", "empty"],
    [
      "bad dataset id",
      (c) => (c.datasets[0].id = "purchase-log"),
      "datasets[0].id",
      "not a valid dataset id",
    ],
    ["duplicate dataset", (c) => (c.datasets[1].id = "purchases"), "datasets[1].id", "duplicate"],
    ["unknown owner", (c) => (c.datasets[1].owner = "mallory"), "datasets[1].owner", "unknown party"],
    ["bad format", (c) => (c.datasets[0].format = "xlsx"), "datasets[0].format", "unsupported value"],
    ["no columns", (c) => (c.datasets[0].columns = []), "datasets[0].columns", "empty"],
    [
      "bad column type",
      (c) => (c.datasets[0].columns[2].type = "BLOB"),
      "datasets[0].columns[2].type",
      "unsupported value",
    ],
    [
      "bad column name",
      (c) => (c.datasets[0].columns[1].name = "a b"),
      "datasets[0].columns[1].name",
      "not a valid column name",
    ],
    [
      "case-folded dup column",
      (c) => (c.datasets[0].columns[1].name = "Email_SHA256"),
      "datasets[0].columns[1].name",
      "duplicate",
    ],
    [
      "identity not a column",
      (c) => (c.datasets[1].identityColumn = "phone"),
      "datasets[1].identityColumn",
      "not a column of the dataset",
    ],
    [
      "bad identityFormat",
      (c) => (c.datasets[0].identityFormat = "md5"),
      "datasets[0].identityFormat",
      "unsupported value",
    ],
    ["queries not array", (c) => (c.queries = {}), "queries", "not an array"],
    ["duplicate query id", (c) => (c.queries[1].id = c.queries[0].id), "queries[1].id", "duplicate"],
    ["empty sql", (c) => (c.queries[0].sql = ""), "queries[0].sql", "empty"],
    [
      "sql too long",
      (c) => (c.queries[0].sql = "x".repeat(CONTRACT_LIMITS.sqlChars + 1)),
      "queries[0].sql",
      "too long",
    ],
    ["query unknown field", (c) => (c.queries[0].sqlUnsafe = true), "queries[0]", "unknown field"],
    [
      "bad parameter type",
      (c) => (c.queries[0].parameters[0].type = "INTEGER"),
      "queries[0].parameters[0].type",
      "unsupported value",
    ],
    [
      "dup parameter",
      (c) => c.queries[0].parameters.push({ name: "SINCE", type: "DATE" }),
      "queries[0].parameters[1].name",
      "duplicate",
    ],
    [
      "unknown runner",
      (c) => (c.queries[0].runners[1] = "mallory"),
      "queries[0].runners[1]",
      "unknown party",
    ],
    [
      "dup runner",
      (c) => (c.queries[0].runners[1] = c.queries[0].runners[0]),
      "queries[0].runners[1]",
      "duplicate",
    ],
    ["no runners", (c) => (c.queries[1].runners = []), "queries[1].runners", "empty"],
    [
      "unknown recipient",
      (c) => (c.queries[1].recipients = ["eve"]),
      "queries[1].recipients[0]",
      "unknown party",
    ],
    [
      "bad policy kind",
      (c) => (c.queries[0].policy.kind = "raw"),
      "queries[0].policy.kind",
      "unsupported value",
    ],
    [
      "k = 0",
      (c) => (c.queries[0].policy.minDistinctIdentities = 0),
      "queries[0].policy.minDistinctIdentities",
      "must be at least 1",
    ],
    [
      "k fractional",
      (c) => (c.queries[0].policy.minDistinctIdentities = 2.5),
      "queries[0].policy.minDistinctIdentities",
      "not an integer",
    ],
    [
      "k as string",
      (c) => (c.queries[0].policy.minDistinctIdentities = "50"),
      "queries[0].policy.minDistinctIdentities",
      "not an integer",
    ],
    [
      "aggregate, no columns",
      (c) => (c.queries[0].policy.allowedColumns = []),
      "queries[0].policy.allowedColumns",
      "empty",
    ],
    [
      "maxRuns 0",
      (c) => (c.queries[0].policy.maxRuns = 0),
      "queries[0].policy.maxRuns",
      "must be at least 1",
    ],
    [
      "dp on row-level",
      (c) => (c.queries[1].policy.dp = { epsilon: 1, budget: 2 }),
      "queries[1].policy.dp",
      "only for aggregate policies",
    ],
    [
      "epsilon 0",
      (c) => (c.queries[0].policy.dp.epsilon = 0),
      "queries[0].policy.dp.epsilon",
      "must be greater than 0",
    ],
    [
      "epsilon negative",
      (c) => (c.queries[0].policy.dp.epsilon = -1),
      "queries[0].policy.dp.epsilon",
      "must be greater than 0",
    ],
    [
      "budget null",
      (c) => (c.queries[0].policy.dp.budget = null),
      "queries[0].policy.dp.budget",
      "not a finite number",
    ],
    [
      "epsilon > budget",
      (c) => (c.queries[0].policy.dp.epsilon = 6),
      "queries[0].policy.dp.epsilon",
      "exceeds budget",
    ],
    [
      "dp unknown field",
      (c) => (c.queries[0].policy.dp.sensitivity = 1),
      "queries[0].policy.dp",
      "unknown field",
    ],
    [
      "clamp inverted",
      (c) => (c.queries[0].policy.dp.clamp = { lower: 5, upper: 5 }),
      "queries[0].policy.dp.clamp",
      "lower must be below upper",
    ],
    [
      "maxRowsPerIdentity 0",
      (c) => (c.queries[0].policy.dp.maxRowsPerIdentity = 0),
      "queries[0].policy.dp.maxRowsPerIdentity",
      "must be at least 1",
    ],
    [
      "epsilon below 1e-6",
      (c) => (c.queries[0].policy.dp.epsilon = 1e-7),
      "queries[0].policy.dp.epsilon",
      "below 1e-6",
    ],
    [
      "dp without maxRowsPerIdentity",
      (c) => delete c.queries[0].policy.dp.maxRowsPerIdentity,
      "queries[0].policy.dp",
      "missing field maxRowsPerIdentity",
    ],
    [
      "dp groups unknown",
      (c) => (c.queries[0].policy.dp.groups = "some"),
      "queries[0].policy.dp.groups",
      "unsupported value",
    ],
    ["dp no columns", (c) => (c.queries[0].policy.dp.columns = []), "queries[0].policy.dp.columns", "empty"],
    [
      "dp column not allowed",
      (c) => (c.queries[0].policy.dp.columns[0].name = "campaign_x"),
      "queries[0].policy.dp.columns[0].name",
      "not an allowed column",
    ],
    [
      "dp column kind unknown",
      (c) => (c.queries[0].policy.dp.columns[0].kind = "max"),
      "queries[0].policy.dp.columns[0].kind",
      "unsupported value",
    ],
    [
      "dp column listed twice",
      (c) => c.queries[0].policy.dp.columns.push({ name: "buyers", kind: "count" }),
      "queries[0].policy.dp.columns[2].name",
      "duplicate",
    ],
    [
      "dp sum decimals out of range",
      (c) => (c.queries[0].policy.dp.columns[1].decimals = 7),
      "queries[0].policy.dp.columns[1].decimals",
      "out of range",
    ],
    [
      "dp count with a decimals field",
      (c) => (c.queries[0].policy.dp.columns[0].decimals = 2),
      "queries[0].policy.dp.columns[0]",
      "unknown field",
    ],
    [
      "dp sum without clamp",
      (c) => delete c.queries[0].policy.dp.clamp,
      "queries[0].policy.dp.clamp",
      "required for sum columns",
    ],
    [
      "dp clamp without sum",
      (c) => (c.queries[0].policy.dp.columns = [{ name: "buyers", kind: "count-distinct" }]),
      "queries[0].policy.dp.clamp",
      "only with a sum column",
    ],
    [
      "dp avg over a non-sum",
      (c) => {
        c.queries[0].policy.allowedColumns.push("avg_spend");
        c.queries[0].policy.dp.columns.push({
          name: "avg_spend",
          kind: "avg",
          sum: "buyers",
          count: "buyers",
        });
      },
      "queries[0].policy.dp.columns[2].sum",
      "not a sum column of this policy",
    ],
    [
      "dp delta of 1",
      (c) => (c.queries[0].policy.dp.delta = 1),
      "queries[0].policy.dp.delta",
      "must be below 1",
    ],
  ];

  it.each(cases)("refuses %s at the right path", (_name, mutate, path, reason) => {
    const e = refusal(mutate);
    expect(e.code).toBe("ERR_CONTRACT");
    expect(e.path).toBe(path);
    expect(e.reason).toBe(reason);
    expect(e.message).toBe(`${path}: ${reason}`);
  });

  it("never quotes a document value in its message", () => {
    const secret = "zz-secret-value-zz";
    for (const mutate of [
      (c: Any) => (c.parties[0].ageRecipient = secret),
      (c: Any) => (c.queries[0].runners[0] = secret),
      (c: Any) => (c[secret] = 1),
      (c: Any) => (c.datasets[0].identityColumn = secret),
    ]) {
      expect(refusal(mutate).message).not.toContain(secret);
    }
  });

  it("refuses non-object inputs", () => {
    for (const v of [null, 1, "x", [], [valid], Object.create({ version: 1 })]) {
      expect(() => validateContract(v)).toThrowError(/^contract: not an object$/);
    }
  });

  it("property: arbitrary JSON yields a contract or a ContractError, nothing else", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          validateContract(v);
        } catch (e) {
          return e instanceof ContractError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });

  it("property: random edits of a valid contract yield a valid contract or a ContractError", () => {
    // Replace one node of the valid document, found by a random path, with arbitrary JSON.
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, p: (string | number)[]) => {
      paths.push(p);
      if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, [...p, i]);
      else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
    };
    walk(valid, []);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: paths.length - 1 }), fc.jsonValue(), (i, replacement) => {
        const c = clone(valid) as Any;
        const p = paths[i]!;
        let parent = c;
        for (const k of p.slice(0, -1)) parent = parent[k];
        parent[p.at(-1)!] = replacement;
        try {
          const out = validateContract(c);
          // Success must mean the result is exactly what was given, nothing dropped or added.
          expect(out).toEqual(c);
        } catch (e) {
          if (!(e instanceof ContractError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
