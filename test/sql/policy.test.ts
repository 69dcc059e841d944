import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { passesK } from "../../enclave/sql/policy.js";
import { runApprovedQuery } from "../../enclave/sql/run.js";
import type { ApprovedQuery, Dataset } from "../../protocol/contract/types.js";
import { csvStream, hex } from "./helpers.js";

const K = 5;
const table = (id: string): Dataset => ({
  id,
  owner: "p",
  format: "csv",
  columns: [
    { name: "id", type: "VARCHAR" },
    { name: "grp", type: "VARCHAR" },
  ],
  identityColumn: "id",
  identityFormat: "sha256-hex",
});
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
    ...rows("lonely", K + 3, 200), // nobody on the right
    ...rows("thin", K + 3, 300), // 1 person on the right: fails the "0 or >= k" rule
  ];
  const rhs = [...rows("exact", K, 100), ...rows("thin", 1, 300)];
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
  policy: { kind: "aggregate", minDistinctIdentities: K, allowedColumns: allowed },
});

describe("k-anonymity enforcement", () => {
  it("suppresses k-1, keeps k, keeps a group with 0 on one side, suppresses 0 < n < k", async () => {
    const result = await runApprovedQuery(
      engine,
      q(
        "SELECT l.grp AS grp, count(*) AS rows_n FROM lhs l LEFT JOIN rhs r ON r.id = l.id GROUP BY l.grp ORDER BY grp",
        ["grp", "rows_n"],
      ),
      {},
    );
    expect(result.columns.map((c) => c.name)).toEqual(["grp", "rows_n"]);
    expect(result.rows).toEqual([
      ["exact", String(K)],
      ["lonely", String(K + 3)],
    ]);
    expect(result.groupsSuppressed).toBe(2);
  });

  it("applies k to a global aggregate too", async () => {
    const few = q("SELECT count(*) AS n FROM rhs r WHERE r.grp = 'thin'", ["n"]);
    const result = await runApprovedQuery(engine, few, {});
    expect(result).toEqual({ columns: [{ name: "n", type: "BIGINT" }], rows: [], groupsSuppressed: 1 });
  });

  it("never outputs the hidden count columns", async () => {
    const r = await runApprovedQuery(engine, q("SELECT grp FROM lhs GROUP BY grp ORDER BY grp", ["grp"]), {});
    expect(r.rows.every((row) => row.length === 1)).toBe(true);
    expect(r.rows).toEqual([["exact"], ["lonely"], ["thin"]]);
  });

  it("passesK matches its definition", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(20), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 10 }),
        (counts, k) => {
          const expected = counts.every((c) => c === 0 || c >= k) && counts.some((c) => c >= k);
          expect(passesK(counts, k)).toBe(expected);
          if (counts.some((c) => c > 0 && c < k)) expect(passesK(counts, k)).toBe(false);
        },
      ),
    );
  });
});
