import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { passesK } from "../../enclave/sql/policy.js";
import { runApprovedQuery } from "../../enclave/sql/run.js";
import { type ApprovedQuery, MIN_K } from "../../protocol/contract/types.js";
import { csvStream, dataset, hex } from "./helpers.js";

const K = MIN_K;
const table = (id: string) =>
  dataset(id, "p", { id: "VARCHAR", grp: "VARCHAR" }, { dimensions: ["grp"] }, "sha256-hex");
const left = table("lhs");
const right = table("rhs");

/** `people` distinct identities (starting at `from`) in group `grp`, each on `copies` rows. */
function rows(grp: string, people: number, from: number, copies = 1): string[] {
  const out: string[] = [];
  for (let i = 0; i < people; i++) for (let c = 0; c < copies; c++) out.push(`${hex(from + i)},${grp}`);
  return out;
}

let engine: SqlEngine;
beforeAll(async () => {
  engine = await openEngine();
  const lhs = [
    ...rows("below", K - 1, 0, 10), // many rows, k-1 people: still suppressed
    ...rows("exact", K, 100),
    ...rows("lonely", K + 3, 200), // nobody on the right: fails ">= k for every table read"
    ...rows("thin", K + 3, 300), // 1 person on the right
    ...rows("wide", K + 7, 400), // k of them on the right, on many rows each
  ];
  const rhs = [...rows("exact", K, 100), ...rows("thin", 1, 300), ...rows("wide", K, 400, 3)];
  await ingestDataset(engine, left, csvStream(`id,grp\n${lhs.join("\n")}\n`, 4096));
  await ingestDataset(engine, right, csvStream(`id,grp\n${rhs.join("\n")}\n`, 4096));
});
afterAll(() => engine.close());

const q = (sql: string, allowed: string[]): ApprovedQuery => ({
  id: "k-test",
  sql,
  parameters: [],
  runners: ["p"],
  recipients: ["p"],
  policy: { kind: "aggregation", minDistinctIdentities: K, allowedColumns: allowed },
});

describe("k-anonymity enforcement", () => {
  it("suppresses k-1, keeps k, and suppresses a group with 0 < n < k or 0 people of a table read", async () => {
    const result = await runApprovedQuery(
      engine,
      q("SELECT l.grp AS grp, count(*) AS rows_n FROM lhs l LEFT JOIN rhs r ON r.id = l.id GROUP BY l.grp", [
        "grp",
        "rows_n",
      ]),
      {},
    );
    expect(result.columns.map((c) => c.name)).toEqual(["grp", "rows_n"]);
    // "lonely" has no one in rhs: a zero next to a one would tell "absent" from "one person".
    expect(result.rows).toEqual([
      ["exact", String(K)],
      ["wide", String(K * 3 + 7)],
    ]);
    // The groups held back are counted nowhere.
    expect(result).not.toHaveProperty("groupsSuppressed");
  });

  it("counts the right table's people, not its rows, and only within the group", async () => {
    // "wide" holds k people of rhs on 3k rows; joined to "thin" alone it would have one person.
    const result = await runApprovedQuery(
      engine,
      q(
        "SELECT r.grp AS grp, count(DISTINCT r.id) AS people FROM lhs l JOIN rhs r ON r.id = l.id GROUP BY r.grp",
        ["grp", "people"],
      ),
      {},
    );
    expect(result.rows).toEqual([
      ["exact", String(K)],
      ["wide", String(K)],
    ]);
  });

  it("applies k to a global aggregate too", async () => {
    const few = q("SELECT count(*) AS n FROM rhs r WHERE r.grp = 'thin'", ["n"]);
    const result = await runApprovedQuery(engine, few, {});
    expect(result).toEqual({ columns: [{ name: "n", type: "BIGINT" }], rows: [] });
    // The same over a join: k people of lhs, one of rhs.
    const joined = q("SELECT count(*) AS n FROM lhs l LEFT JOIN rhs r ON r.id = l.id WHERE l.grp = 'thin'", [
      "n",
    ]);
    expect((await runApprovedQuery(engine, joined, {})).rows).toEqual([]);
  });

  it("never outputs the hidden count columns", async () => {
    const r = await runApprovedQuery(engine, q("SELECT l.grp AS grp FROM lhs l GROUP BY l.grp", ["grp"]), {});
    expect(r.columns).toEqual([{ name: "grp", type: "VARCHAR" }]);
    expect(r.rows.every((row) => row.length === 1)).toBe(true);
    // No ORDER BY: the enclave releases rows in its canonical order.
    expect(r.rows).toEqual([["exact"], ["lonely"], ["thin"], ["wide"]]);
  });

  it("passesK matches its definition", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(20), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 10 }),
        (counts, k) => {
          expect(passesK([], k)).toBe(false);
          const expected = counts.every((c) => c >= k);
          expect(passesK(counts, k)).toBe(expected);
          // A table with no one in the group fails like one with too few.
          if (counts.some((c) => c < k)) expect(passesK(counts, k)).toBe(false);
          if (counts.includes(0)) expect(passesK(counts, k)).toBe(false);
        },
      ),
    );
  });
});
