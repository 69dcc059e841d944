import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ContractError } from "../../protocol/contract/errors.js";
import { type Contract, MIN_K } from "../../protocol/contract/types.js";
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
      "name with a bidi override",
      (c) => (c.parties[0].name = "Acme \u202egnp.exe"),
      "parties[0].name",
      "invisible or bidirectional-override character",
    ],
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
      "dataset without analysis",
      (c) => delete c.datasets[0].analysis,
      "datasets[0]",
      "missing field analysis",
    ],
    [
      "analysis unknown field",
      (c) => (c.datasets[0].analysis.rows = true),
      "datasets[0].analysis",
      "unknown field",
    ],
    [
      "identity as a dimension",
      (c) => c.datasets[0].analysis.dimensions.push("email_sha256"),
      "datasets[0].analysis.dimensions[1]",
      "the identity column takes no other role",
    ],
    [
      "identity as a join column",
      (c) => (c.datasets[1].analysis.joinColumns = ["email_sha256"]),
      "datasets[1].analysis.joinColumns[0]",
      "the identity column takes no other role",
    ],
    [
      "identity as a measure",
      (c) => (c.datasets[1].analysis.measures = [{ column: "email_sha256", aggregates: ["count"] }]),
      "datasets[1].analysis.measures[0].column[0]",
      "the identity column takes no other role",
    ],
    [
      "dimension not a column",
      (c) => (c.datasets[1].analysis.dimensions = ["channel"]),
      "datasets[1].analysis.dimensions[0]",
      "not a column of the dataset",
    ],
    [
      "dimension listed twice",
      (c) => c.datasets[0].analysis.dimensions.push("day"),
      "datasets[0].analysis.dimensions[1]",
      "duplicate",
    ],
    [
      "measure also a dimension",
      (c) => c.datasets[0].analysis.dimensions.push("amount"),
      "datasets[0].analysis.measures[0].column",
      "already a dimension or join column",
    ],
    [
      "measure also a join column",
      (c) => (c.datasets[0].analysis.joinColumns = ["amount"]),
      "datasets[0].analysis.measures[0].column",
      "already a dimension or join column",
    ],
    [
      "measure listed twice",
      (c) => c.datasets[0].analysis.measures.push({ column: "amount", aggregates: ["max"] }),
      "datasets[0].analysis.measures[1].column",
      "duplicate",
    ],
    [
      "measure without aggregates",
      (c) => (c.datasets[0].analysis.measures[0].aggregates = []),
      "datasets[0].analysis.measures[0].aggregates",
      "empty",
    ],
    [
      "unknown measure aggregate",
      (c) => c.datasets[0].analysis.measures[0].aggregates.push("stddev"),
      "datasets[0].analysis.measures[0].aggregates[3]",
      "unsupported value",
    ],
    [
      "sum of a VARCHAR measure",
      (c) =>
        (c.datasets[1].analysis = {
          joinColumns: [],
          dimensions: [],
          measures: [{ column: "campaign", aggregates: ["count", "sum"] }],
        }),
      "datasets[1].analysis.measures[0].aggregates[1]",
      "needs a numeric column",
    ],
    [
      "median of a DATE measure",
      (c) => {
        c.datasets[0].analysis.dimensions = [];
        c.datasets[0].analysis.measures.push({ column: "day", aggregates: ["min", "median"] });
      },
      "datasets[0].analysis.measures[1].aggregates[1]",
      "needs a numeric column",
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
    [
      "sql with a NUL",
      (c) => (c.queries[0].sql = `${c.queries[0].sql}\u0000`),
      "queries[0].sql",
      "control character",
    ],
    [
      "sql with a vertical tab",
      (c) => (c.queries[0].sql = c.queries[0].sql.replace(" FROM", "\vFROM")),
      "queries[0].sql",
      "control character",
    ],
    [
      "sql with a bidi isolate",
      (c) => (c.queries[0].sql = c.queries[0].sql.replace("$since", "$since \u2066-- \u2069")),
      "queries[0].sql",
      "invisible or bidirectional-override character",
    ],
    [
      "sql with a zero-width space",
      (c) => (c.queries[1].sql = c.queries[1].sql.replace("i.campaign AS", "i.campaign\u200b AS")),
      "queries[1].sql",
      "invisible or bidirectional-override character",
    ],
    [
      "description with a right-to-left override",
      (c) => (c.queries[0].description = "Purchases \u202eafter\u202c an impression"),
      "queries[0].description",
      "invisible or bidirectional-override character",
    ],
    [
      "column name with a zero-width joiner",
      (c) => (c.datasets[0].columns[1].name = "amo\u200dunt"),
      "datasets[0].columns[1].name",
      "invisible or bidirectional-override character",
    ],
    [
      "domain value with a byte-order mark",
      (c) => {
        c.queries[0].policy.dp.groups = "public";
        c.queries[0].policy.dp.domain = [{ column: "campaign", values: ["\ufeffspring"] }];
      },
      "queries[0].policy.dp.domain[0].values[0]",
      "invisible or bidirectional-override character",
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
      "k below the floor",
      (c) => (c.queries[1].policy.minDistinctIdentities = 9),
      "queries[1].policy.minDistinctIdentities",
      "below the floor of 10",
    ],
    [
      "no allowed columns",
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
      "the retired aggregate kind",
      (c) => (c.queries[1].policy.kind = "aggregate"),
      "queries[1].policy.kind",
      "unsupported value",
    ],
    [
      "the retired row-level kind",
      (c) => (c.queries[1].policy.kind = "row-level"),
      "queries[1].policy.kind",
      "unsupported value",
    ],
    [
      "dp under the aggregation rule",
      (c) => (c.queries[1].policy.dp = clone(c.queries[0].policy.dp)),
      "queries[1].policy.dp",
      'only under the "custom" rule',
    ],
    [
      "custom rule without dp",
      (c) => delete c.queries[0].policy.dp,
      "queries[0].policy.dp",
      'required under the "custom" rule',
    ],
    [
      "public groups without a domain",
      (c) => (c.queries[0].policy.dp.groups = "public"),
      "queries[0].policy.dp.domain",
      'required for groups "public"',
    ],
    [
      "a domain on private groups",
      (c) => (c.queries[0].policy.dp.domain = [{ column: "campaign", values: ["spring"] }]),
      "queries[0].policy.dp.domain",
      'only with groups "public"',
    ],
    [
      "a domain over a noised column",
      (c) => {
        c.queries[0].policy.dp.groups = "public";
        c.queries[0].policy.dp.domain = [{ column: "buyers", values: [1] }];
      },
      "queries[0].policy.dp.domain[0].column",
      "a noised column is not a group key",
    ],
    [
      "a domain over a column that may not leave",
      (c) => {
        c.queries[0].policy.dp.groups = "public";
        c.queries[0].policy.dp.domain = [{ column: "day", values: ["2024-01-01"] }];
      },
      "queries[0].policy.dp.domain[0].column",
      "not an allowed column",
    ],
    [
      "a domain value listed twice",
      (c) => {
        c.queries[0].policy.dp.groups = "public";
        c.queries[0].policy.dp.domain = [{ column: "campaign", values: ["spring", "spring"] }];
      },
      "queries[0].policy.dp.domain[0].values[1]",
      "duplicate",
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

  it("accepts SQL spread over lines with tabs and CRLF, and a public domain", () => {
    const c = clone(valid) as Any;
    c.queries[1].sql = c.queries[1].sql.replaceAll(" FROM", "\r\nFROM").replaceAll(" GROUP", "\n\tGROUP");
    c.queries[0].policy.dp.groups = "public";
    c.queries[0].policy.dp.domain = [{ column: "campaign", values: ["spring", "summer"] }];
    expect(validateContract(c)).toEqual(c);
  });

  it("accepts k at the floor", () => {
    const c = clone(valid) as Any;
    c.queries[1].policy.minDistinctIdentities = MIN_K;
    expect(validateContract(c).queries[1]!.policy.minDistinctIdentities).toBe(MIN_K);
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
