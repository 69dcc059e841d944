/**
 * The contract review: what each query of the demo contract reads and releases, the warnings a
 * reviewer must see (one person's value, subtraction, low k, high ε, custom, no maxRuns), refused
 * queries shown rather than thrown, and the JSON form round-tripping.
 */
import { describe, expect, it } from "vitest";
import { parseSqlWithDuckDb, reviewContractWithDuckDb } from "../../client/node/review.js";
import { contractDigestHex } from "../../client/sdk/contract.js";
import type { ApprovedQuery, Contract } from "../../protocol/contract/types.js";
import {
  type ContractReview,
  type QueryReview,
  renderReview,
  reviewContract,
} from "../../protocol/rules/review.js";
import { useCaseContract as demoContract } from "../../scripts/demo/usecases.js";

const demo = (): Contract =>
  demoContract(
    ["advertiser", "publisher"].map((id) => ({
      id,
      name: id[0]!.toUpperCase() + id.slice(1),
      signingKey: { kty: "EC", crv: "P-256", x: "x", y: "y" },
      ageRecipient: "age1placeholder",
    })),
  );

const query = (r: ContractReview, id: string): QueryReview => {
  const q = r.queries.find((x) => x.id === id);
  if (!q) throw new Error(`no query ${id} in the review`);
  return q;
};

/** table alias -> role -> column names, from a query's review. */
function readsByRole(q: QueryReview): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const t of q.reads) {
    const roles: Record<string, string[]> = {};
    for (const c of t.columns)
      for (const role of c.roles.length ? c.roles : ["none"]) roles[role] = [...(roles[role] ?? []), c.name];
    out[`${t.dataset} AS ${t.alias}`] = roles;
  }
  return out;
}

const codes = (q: QueryReview) => q.warnings.map((w) => w.code);

/** An aggregation query over the demo tables. */
function aggregation(id: string, sql: string, extra: Partial<ApprovedQuery> = {}): ApprovedQuery {
  return {
    id,
    sql,
    parameters: [],
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy: {
      kind: "aggregation",
      minDistinctIdentities: 50,
      allowedColumns: ["category", "n", "top"],
      maxRuns: 5,
    },
    ...extra,
  };
}

describe("the demo contract's review", () => {
  let review: ContractReview;
  const load = async () => {
    review ??= await reviewContractWithDuckDb(demo());
    return review;
  };

  it("describes each dataset: owner, identity, column roles, measures", async () => {
    const r = await load();
    expect(r.contract).toBe("acme-news-q3");
    expect(r.digest).toBe(await contractDigestHex(demo()));
    expect(r.admitted).toBe(true);
    const [purchases, exposures] = r.datasets;
    expect(purchases).toMatchObject({
      id: "advertiser_purchases",
      owner: "advertiser",
      ownerName: "Advertiser",
      format: "csv",
      identity: { column: "user_id", format: "sha256-hex" },
      measures: [{ column: "amount", aggregates: ["count", "sum", "avg"] }],
      warnings: [],
    });
    expect(purchases!.columns).toEqual([
      { name: "user_id", type: "VARCHAR", roles: ["identity"] },
      { name: "purchase_ts", type: "TIMESTAMP", roles: ["dimension"] },
      { name: "amount", type: "DOUBLE", roles: ["measure"] },
      { name: "category", type: "VARCHAR", roles: ["dimension"] },
    ]);
    expect(exposures!.columns.filter((c) => c.roles.includes("dimension")).map((c) => c.name)).toEqual([
      "exposure_ts",
      "campaign",
      "channel",
      "arm",
      "segment",
      "age_band",
    ]);
  });

  it("closed-loop: both tables at k = 50, the campaign filter, the LEFT JOIN key, the outputs", async () => {
    const q = query(await load(), "closed-loop");
    expect(q).toMatchObject({
      rule: "aggregation",
      status: "admitted",
      runners: ["advertiser", "publisher"],
      recipients: ["advertiser", "publisher"],
      k: 50,
      where: "e.campaign = $campaign",
      groupBy: ["e.arm"],
      differencingGuard: true,
      maxRuns: null,
    });
    expect(q.reads.map((t) => [t.dataset, t.alias, t.k])).toEqual([
      ["publisher_exposures", "e", 50],
      ["advertiser_purchases", "p", 50],
    ]);
    expect(readsByRole(q)).toEqual({
      "publisher_exposures AS e": { dimension: ["arm", "campaign", "exposure_ts"], identity: ["user_id"] },
      "advertiser_purchases AS p": { dimension: ["purchase_ts"], identity: ["user_id"] },
    });
    expect(q.joins).toEqual([
      expect.objectContaining({
        dataset: "advertiser_purchases",
        alias: "p",
        type: "LEFT",
        keys: ["p.user_id = e.user_id"],
      }),
    ]);
    expect(q.parameters).toEqual([{ name: "campaign", type: "VARCHAR", filters: ["e.campaign"] }]);
    expect(q.outputs.map((o) => [o.name, o.kind, o.aggregates])).toEqual([
      ["arm", "dimension", []],
      ["users", "aggregate", ["count(DISTINCT e.user_id)"]],
      ["converters", "aggregate", ["count(DISTINCT p.user_id)"]],
      ["conversion_rate", "aggregate", ["count(DISTINCT p.user_id)", "count(DISTINCT e.user_id)"]],
    ]);
    expect(codes(q)).toEqual(["no-max-runs", "subtraction"]);
    expect(q.warnings[1]!.message).toMatch(
      /two parameter values \(\$campaign, filtering e\.campaign\) can be subtracted/,
    );
  });

  it("audience-overlap: no parameter, so no subtraction warning; only the identity of p is read", async () => {
    const q = query(await load(), "audience-overlap");
    expect(readsByRole(q)).toEqual({
      "publisher_exposures AS e": { dimension: ["segment"], identity: ["user_id"] },
      "advertiser_purchases AS p": { identity: ["user_id"] },
    });
    expect(q.parameters).toEqual([]);
    expect(q.where).toBeUndefined();
    expect(codes(q)).toEqual(["no-max-runs"]);
  });

  it("audience-insight: the category parameter filters p.category", async () => {
    const q = query(await load(), "audience-insight");
    expect(q.runners).toEqual(["advertiser"]);
    expect(readsByRole(q)).toEqual({
      "publisher_exposures AS e": { dimension: ["age_band"], identity: ["user_id"] },
      "advertiser_purchases AS p": { dimension: ["category"], identity: ["user_id"] },
    });
    expect(q.joins.map((j) => [j.type, j.keys])).toEqual([["INNER", ["p.user_id = e.user_id"]]]);
    expect(q.parameters).toEqual([{ name: "category", type: "VARCHAR", filters: ["p.category"] }]);
  });

  it("last-touch (custom): every table read, subquery included; noised outputs; DP settings", async () => {
    const q = query(await load(), "last-touch");
    expect(q).toMatchObject({
      rule: "custom",
      status: "admitted",
      k: 50,
      groupBy: ["e.channel"],
      differencingGuard: null,
    });
    // Public groups: no k threshold (every declared channel is released, noised).
    expect(q.reads.map((t) => [t.dataset, t.alias, t.k])).toEqual([
      ["advertiser_purchases", "p", null],
      ["publisher_exposures", "e", null],
      ["publisher_exposures", "x", null],
    ]);
    expect(readsByRole(q)).toEqual({
      "advertiser_purchases AS p": { identity: ["user_id"], dimension: ["purchase_ts"], measure: ["amount"] },
      "publisher_exposures AS e": { identity: ["user_id"], dimension: ["channel", "exposure_ts"] },
      "publisher_exposures AS x": { identity: ["user_id"], dimension: ["exposure_ts"] },
    });
    expect(q.outputs).toEqual([
      {
        name: "channel",
        kind: "dimension",
        text: "e.channel",
        aggregates: [],
        domain: ["ctv", "display", "social"],
      },
      {
        name: "conversions",
        kind: "aggregate",
        text: "count(*)",
        aggregates: ["count(*)"],
        noise: { name: "conversions", kind: "count" },
      },
      {
        name: "revenue",
        kind: "aggregate",
        text: "sum(p.amount)",
        aggregates: ["sum(p.amount)"],
        noise: { name: "revenue", kind: "sum", decimals: 2 },
      },
    ]);
    expect(q.dp).toEqual({
      epsilon: 1,
      budget: 10,
      partyBudget: 10,
      runsPerBudget: 10,
      delta: 0,
      groups: "public",
      domain: [{ column: "channel", values: ["ctv", "display", "social"] }],
      maxRowsPerIdentity: 3,
      clamp: { lower: 0, upper: 200 },
    });
    expect(q.parameters).toEqual([
      { name: "start", type: "DATE", filters: ["p.purchase_ts"] },
      { name: "end", type: "DATE", filters: ["p.purchase_ts"] },
    ]);
    expect(codes(q)).toEqual(["custom-rule", "no-max-runs", "subtraction"]);
    // ε = 1 and budget = 10 sit at the thresholds: not flagged.
    expect(codes(q)).not.toContain("high-epsilon");
  });

  it("flags nothing across the demo's queries (no two share tables, groups and an aggregate)", async () => {
    const r = await load();
    expect(r.warnings.filter((w) => (w.queries?.length ?? 0) > 1)).toEqual([]);
    expect(r.warnings.map((w) => w.code).filter((c) => c === "one-person-value" || c === "low-k")).toEqual(
      [],
    );
  });

  it("renders within 100 columns, every query and dataset named", async () => {
    const r = await load();
    const text = renderReview(r);
    for (const line of text.split("\n")) expect(line.length, line).toBeLessThanOrEqual(100);
    for (const q of r.queries) expect(text).toContain(`] ${q.id}  `);
    expect(text).toContain("advertiser_purchases  owned by advertiser (Advertiser), csv");
    expect(text).toContain("$campaign VARCHAR, filters e.campaign");
    expect(text).toMatch(/SUMMARY {2}4 queries: 4 admitted, 0 refused; 8 warnings/);
  });

  it("JSON round trip: the parsed report equals the report and renders the same", async () => {
    const r = await load();
    const back = JSON.parse(JSON.stringify(r)) as ContractReview;
    expect(back).toStrictEqual(r);
    expect(renderReview(back)).toBe(renderReview(r));
  });
});

describe("warnings", () => {
  it("max on a measure: warned on the dataset that allows it and on the query that uses it", async () => {
    const c = demo();
    c.datasets[0]!.analysis.measures = [{ column: "amount", aggregates: ["count", "sum", "max"] }];
    c.queries = [
      aggregation(
        "top-spend",
        "SELECT p.category AS category, max(p.amount) AS top FROM advertiser_purchases p GROUP BY p.category",
      ),
    ];
    const r = await reviewContractWithDuckDb(c);
    expect(r.datasets[0]!.warnings).toEqual([
      expect.objectContaining({ code: "one-person-value", dataset: "advertiser_purchases" }),
    ]);
    const q = query(r, "top-spend");
    expect(q.status).toBe("admitted");
    expect(q.outputs[1]).toMatchObject({ name: "top", aggregates: ["max(p.amount)"] });
    expect(q.warnings).toContainEqual({
      code: "one-person-value",
      queries: ["top-spend"],
      message: "max(p.amount) releases one person's value of each group",
    });
    expect(renderReview(r)).toContain("! max(p.amount) releases one person's value of each group");
    // maxRuns is set: not flagged.
    expect(codes(q)).not.toContain("no-max-runs");
  });

  it("two queries over the same tables and groups with different filters can be subtracted", async () => {
    const c = demo();
    const base = "SELECT p.category AS category, count(DISTINCT p.user_id) AS n FROM advertiser_purchases p";
    c.queries = [
      aggregation("all-buyers", `${base} GROUP BY p.category`),
      // Another alias for the same table: still the same query shape.
      aggregation(
        "big-buyers",
        "SELECT q.category AS category, count(DISTINCT q.user_id) AS n FROM advertiser_purchases q " +
          "WHERE q.purchase_ts >= TIMESTAMP '2024-04-10' GROUP BY q.category",
      ),
      // Same filter as all-buyers: identical answers, nothing to subtract.
      aggregation("all-buyers-again", `${base} GROUP BY p.category`),
      // Other groups: not comparable row by row.
      aggregation(
        "by-time",
        "SELECT p.purchase_ts AS category, count(DISTINCT p.user_id) AS n FROM advertiser_purchases p " +
          "WHERE p.category = 'shoes' GROUP BY p.purchase_ts",
      ),
    ];
    const r = await reviewContractWithDuckDb(c);
    expect(r.admitted).toBe(true);
    const across = r.warnings.filter((w) => (w.queries?.length ?? 0) > 1);
    expect(across.map((w) => [w.code, w.queries])).toEqual([
      ["subtraction", ["all-buyers", "big-buyers"]],
      ["subtraction", ["big-buyers", "all-buyers-again"]],
    ]);
    expect(across[0]!.message).toContain("both release count(DISTINCT p.user_id) with different filters");
    expect(renderReview(r)).toContain("ACROSS QUERIES");
  });

  it("a parameterised query: answers for two parameter values can be subtracted", async () => {
    const c = demo();
    c.queries = [
      aggregation(
        "since",
        "SELECT p.category AS category, count(DISTINCT p.user_id) AS n FROM advertiser_purchases p " +
          "WHERE p.purchase_ts >= $since GROUP BY p.category",
        { parameters: [{ name: "since", type: "TIMESTAMP" }] },
      ),
    ];
    const q = query(await reviewContractWithDuckDb(c), "since");
    expect(q.parameters).toEqual([{ name: "since", type: "TIMESTAMP", filters: ["p.purchase_ts"] }]);
    expect(q.warnings).toEqual([
      {
        code: "subtraction",
        queries: ["since"],
        message:
          "answers for two parameter values ($since, filtering p.purchase_ts) can be subtracted: " +
          "k holds for each answer, not for their difference; the differencing guard suppresses a row whose " +
          "people differ from a released one by fewer than k, not a larger difference of people a party knows",
      },
    ]);
  });

  it("a query whose differencing guard is off", async () => {
    const c = demo();
    c.queries = [c.queries[3]!];
    c.queries[0]!.policy.differencingGuard = false;
    const q = query(await reviewContractWithDuckDb(c), "audience-insight");
    expect(q.differencingGuard).toBe(false);
    expect(codes(q)).toEqual(["no-differencing-guard", "no-max-runs", "subtraction"]);
    expect(q.warnings[2]!.message).toMatch(/not for their difference, and the differencing guard is off$/);
    expect(renderReview(await reviewContractWithDuckDb(c))).toContain("guard         differencing guard OFF");
  });

  it("each party's ε total is the smallest budget of the contract's DP queries", async () => {
    const c = demo();
    const cheap = structuredClone(c.queries[2]!);
    cheap.id = "last-touch-small";
    cheap.policy.dp!.budget = 4;
    c.queries = [c.queries[2]!, cheap];
    const r = await reviewContractWithDuckDb(c);
    expect(r.queries.map((q) => [q.dp?.budget, q.dp?.partyBudget, q.dp?.runsPerBudget])).toEqual([
      [10, 4, 4],
      [4, 4, 4],
    ]);
    expect(renderReview(r)).toContain(
      "each party's ε total 4 (smallest budget declared; this query's: 10): 4 runs",
    );
  });

  it("low k, high ε and budget", async () => {
    const c = demo();
    const [, , lastTouch] = c.queries;
    lastTouch!.policy.minDistinctIdentities = 10;
    lastTouch!.policy.dp = { ...lastTouch!.policy.dp!, epsilon: 2, budget: 20, groups: "private" };
    delete lastTouch!.policy.dp.domain;
    lastTouch!.policy.maxRuns = 3;
    c.queries = [lastTouch!];
    const q = query(await reviewContractWithDuckDb(c), "last-touch");
    expect(codes(q)).toEqual(["low-k", "custom-rule", "high-epsilon", "high-budget", "subtraction"]);
    expect(q.warnings[0]!.message).toMatch(/^k = 10 is low/);
    // Private groups: k is the noisy threshold's floor, delta the enclave default.
    expect(q.reads.every((t) => t.k === 10)).toBe(true);
    expect(q.dp).toMatchObject({
      epsilon: 2,
      budget: 20,
      partyBudget: 20,
      runsPerBudget: 10,
      delta: null,
      groups: "private",
    });
    expect(renderReview({ ...(await reviewContractWithDuckDb(c)) })).toContain("noisy threshold, k >= 10");
  });
});

describe("refused queries are reported, not thrown", () => {
  it("the rule's reason, the SQL, and admitted: false", async () => {
    const c = demo();
    c.queries = [
      ...c.queries,
      aggregation(
        "raw-amounts",
        "SELECT p.category AS category, count(*) AS n FROM advertiser_purchases p WHERE p.amount > 100 GROUP BY p.category",
      ),
      aggregation("not-a-select", "DELETE FROM advertiser_purchases"),
      { ...c.queries[2]!, id: "custom-unknown", sql: "SELECT count(*) AS conversions FROM secrets" },
      aggregation(
        "stray-output",
        "SELECT p.category AS category, count(*) AS buyers FROM advertiser_purchases p GROUP BY p.category",
      ),
    ];
    const r = await reviewContractWithDuckDb(c);
    expect(r.admitted).toBe(false);
    expect(r.queries.filter((q) => q.status === "admitted").map((q) => q.id)).toEqual(
      demo().queries.map((q) => q.id),
    );
    expect(query(r, "raw-amounts")).toMatchObject({
      status: "refused",
      refusal: "measure p.amount may appear only inside an allowed aggregate: p.amount",
    });
    expect(query(r, "raw-amounts").warnings[0]).toEqual({
      code: "refused",
      queries: ["raw-amounts"],
      message: "refused: measure p.amount may appear only inside an allowed aggregate: p.amount",
    });
    expect(query(r, "not-a-select").refusal).toMatch(/^is not a single SELECT statement/);
    expect(query(r, "custom-unknown")).toMatchObject({ status: "refused", refusal: "unknown table secrets" });
    expect(query(r, "stray-output").refusal).toBe(
      "output column buyers is not in the policy's allowedColumns",
    );
    const text = renderReview(r);
    expect(text).toContain("[5] raw-amounts  aggregation rule  REFUSED");
    expect(text).toContain(
      "REFUSED raw-amounts: measure p.amount may appear only inside an allowed aggregate",
    );
    expect(text).toContain(
      "  sql           SELECT p.category AS category, count(*) AS n FROM advertiser_purchases p WHERE",
    );
    expect(text).toContain("The enclave will not load this contract while a query is refused.");
  });

  it("a duplicate id, or a parser that throws, is a refusal too", async () => {
    const c = demo();
    c.queries = [c.queries[0]!, c.queries[0]!, { ...c.queries[1]!, id: "boom" }];
    const trees = await parseSqlWithDuckDb(c.queries.map((q) => q.sql));
    const r = reviewContract(c, (q) => {
      if (q.id === "boom") throw new Error("parser crashed");
      return trees[c.queries.indexOf(q)]!;
    });
    expect(r.queries.map((q) => [q.id, q.status, q.refusal])).toEqual([
      ["closed-loop", "admitted", undefined],
      ["closed-loop", "refused", "duplicate query id"],
      ["boom", "refused", "could not be reviewed: parser crashed"],
    ]);
  });
});
