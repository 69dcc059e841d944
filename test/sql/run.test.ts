import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { validateParameters } from "../../enclave/sql/params.js";
import { resultToCsv, resultToJson, runApprovedQuery } from "../../enclave/sql/run.js";
import { type ApprovedQuery, MIN_K, type Parameter } from "../../protocol/contract/types.js";
import { crowd, csvStream, dataset, hex } from "./helpers.js";

const SECRET = "SECRET-TOKEN-7f3a";
const INJECTED = "x' OR 1=1 --";
const K = MIN_K;
const notes = dataset(
  "notes",
  "p",
  { id: "VARCHAR", note: "VARCHAR", day: "DATE", seen_at: "TIMESTAMP", n: "BIGINT" },
  { dimensions: ["note", "day", "seen_at", "n"] },
);
// `crowd` (helpers.ts) gets many rows of one person: a self-join of it multiplies rows without bound.

/** 1500 people, one row each; 15 of them (i % 100 == 0) wrote INJECTED, 15 (i % 100 == 7) SECRET. */
function notesCsv(): string {
  const lines = ["id,note,day,seen_at,n"];
  for (let i = 0; i < 1500; i++) {
    const note = i % 100 === 0 ? `"${INJECTED}"` : i % 100 === 7 ? SECRET : `"n${i % 3}, ok"`;
    lines.push(`${hex(i)},${note},2024-01-0${1 + (i % 5)},2024-01-01 10:00:0${i % 10},${i}`);
  }
  return `${lines.join("\n")}\n`;
}

let engine: SqlEngine;
beforeAll(async () => {
  engine = await openEngine({ queryTimeoutMs: 300, maxResultRows: 1000 });
  await ingestDataset(engine, notes, csvStream(notesCsv(), 65536));
  const many = Array.from({ length: 3000 }, () => `${hex(1)},a`);
  await ingestDataset(engine, crowd, csvStream(`id,g\n${many.join("\n")}\n`, 65536));
});
afterAll(() => engine.close());

const aggregation = (sql: string, parameters: Parameter[], allowed: string[]): ApprovedQuery => ({
  id: "agg-q",
  sql,
  parameters,
  runners: ["p"],
  recipients: ["p"],
  policy: { kind: "aggregation", minDistinctIdentities: K, allowedColumns: allowed },
});

describe("runApprovedQuery", () => {
  const byNote = aggregation(
    "SELECT x.note AS note, count(DISTINCT x.id) AS people FROM notes x WHERE x.note = $note GROUP BY x.note",
    [{ name: "note", type: "VARCHAR" }],
    ["note", "people"],
  );

  it("binds a value crafted as SQL as a plain value", async () => {
    // Exactly the 15 people whose note is that text, not every row.
    const injected = await runApprovedQuery(engine, byNote, { note: INJECTED });
    expect(injected.rows).toEqual([[INJECTED, "15"]]);
    const none = await runApprovedQuery(engine, byNote, { note: "' OR '1'='1" });
    expect(none).toMatchObject({ rows: [] });
  });

  it("binds DATE, TIMESTAMP and BIGINT in their accepted forms", async () => {
    const q = aggregation(
      "SELECT count(*) AS c FROM notes x WHERE x.day = $day AND x.seen_at >= $at AND x.n < $max",
      [
        { name: "day", type: "DATE" },
        { name: "at", type: "TIMESTAMP" },
        { name: "max", type: "BIGINT" },
      ],
      ["c"],
    );
    const base = await runApprovedQuery(engine, q, {
      day: "2024-01-02",
      at: "2024-01-01T10:00:05Z",
      max: 100n,
    });
    // i % 5 == 1 and i % 10 >= 5 and i < 100: i in {1..99} with i%10 == 6 -> 10 rows, 10 people (= k)
    expect(base.rows).toEqual([["10"]]);
    const sameAsString = await runApprovedQuery(engine, q, {
      day: "2024-01-02",
      at: "2024-01-01 12:00:05+02:00",
      max: "100",
    });
    expect(sameAsString.rows).toEqual([["10"]]);
    // One person fewer (i < 96): under k, suppressed.
    const fewer = await runApprovedQuery(engine, q, {
      day: "2024-01-02",
      at: "2024-01-01T10:00:05Z",
      max: 96,
    });
    expect(fewer).toMatchObject({ rows: [] });
    // A group held back under k reads exactly like no one matching: nothing counts it.
    const nobody = await runApprovedQuery(engine, q, {
      day: "2024-01-02",
      at: "2024-01-01T10:00:05Z",
      max: 0,
    });
    expect(resultToJson(fewer)).toBe(resultToJson(nobody));
    expect(resultToCsv(fewer)).toBe(resultToCsv(nobody));
  });

  it("evaluates a value that fails as NULL for its row: the run never fails on the data, quoting nothing", async () => {
    // date_trunc with a data-dependent part fails, and the engine's message quotes the value.
    await expect(
      engine.connection.run("SELECT date_trunc(note, day) FROM notes WHERE n = 7"),
    ).rejects.toThrow(SECRET);
    const q = aggregation(
      "SELECT date_trunc(x.note, x.day) AS v, count(*) AS c FROM notes x WHERE x.n % 100 = 7 GROUP BY date_trunc(x.note, x.day)",
      [],
      ["v", "c"],
    );
    // Under TRY the failing value is NULL for its row: the 15 people form one NULL group.
    const result = await runApprovedQuery(engine, q, {});
    expect(result.columns.map((c) => c.name)).toEqual(["v", "c"]);
    expect(result).toMatchObject({ rows: [[null, "15"]] });
    expect(JSON.stringify(result)).not.toContain(SECRET);
    expect(resultToJson(result)).not.toContain(SECRET);
  });

  it("casts a value that does not convert to NULL instead of failing", async () => {
    const q = aggregation(
      "SELECT CAST(x.note AS INTEGER) AS v, count(DISTINCT x.id) AS people FROM notes x WHERE x.n % 100 = 7 GROUP BY CAST(x.note AS INTEGER)",
      [],
      ["v", "people"],
    );
    const result = await runApprovedQuery(engine, q, {});
    expect(result.rows).toEqual([[null, "15"]]);
    expect(JSON.stringify(result)).not.toContain(SECRET);
  });

  it("interrupts a query past the timeout", async () => {
    // 3000 rows of one person joined three ways: 2.7e10 rows to count.
    const slow = aggregation(
      "SELECT count(*) AS c FROM crowd a JOIN crowd b ON b.id = a.id JOIN crowd c ON c.id = a.id",
      [],
      ["c"],
    );
    const started = Date.now();
    await expect(runApprovedQuery(engine, slow, {})).rejects.toMatchObject({ code: "ERR_QUERY_TIMEOUT" });
    expect(Date.now() - started).toBeLessThan(5000);
    // the connection is usable again afterwards
    await expect(runApprovedQuery(engine, byNote, { note: SECRET })).resolves.toMatchObject({
      rows: [[SECRET, "15"]],
    });
  });

  it("refuses results over the row cap, counted after suppression", async () => {
    const small = await openEngine({ maxResultRows: 10 });
    try {
      await ingestDataset(small, notes, csvStream(notesCsv(), 65536));
      // 17 groups of note and day, each of at least 15 people: 17 rows would leave.
      const byNoteAndDay = aggregation(
        "SELECT x.note AS note, x.day AS day, count(*) AS c FROM notes x GROUP BY x.note, x.day",
        [],
        ["note", "day", "c"],
      );
      await expect(runApprovedQuery(small, byNoteAndDay, {})).rejects.toMatchObject({
        code: "ERR_QUERY_RESULT_TOO_LARGE",
      });
      // 5 groups: under the cap.
      const five = aggregation(
        "SELECT x.note AS note, count(*) AS c FROM notes x GROUP BY x.note",
        [],
        ["note", "c"],
      );
      expect((await runApprovedQuery(small, five, {})).rows).toHaveLength(5);
      // 1500 groups of one person each: nothing may leave, so the cap is not what refuses it.
      const perPerson = aggregation(
        "SELECT x.n AS n, count(*) AS c FROM notes x GROUP BY x.n",
        [],
        ["n", "c"],
      );
      await expect(runApprovedQuery(small, perPerson, {})).resolves.toMatchObject({ rows: [] });
      const sameOnBigEngine = await runApprovedQuery(engine, perPerson, {});
      expect(sameOnBigEngine).toMatchObject({ rows: [] });
      expect(Object.keys(JSON.parse(resultToJson(sameOnBigEngine)))).toEqual(["columns", "rows"]);
    } finally {
      small.close();
    }
  });

  it("refuses missing, extra and mistyped parameters naming the parameter only", async () => {
    await expect(runApprovedQuery(engine, byNote, {})).rejects.toMatchObject({
      code: "ERR_QUERY_PARAMETER",
      parameter: "note",
    });
    await expect(runApprovedQuery(engine, byNote, { note: "a", other: 1 })).rejects.toMatchObject({
      parameter: "other",
    });
    const err = await runApprovedQuery(engine, byNote, { note: 12345678 }).catch((e) => e);
    expect(err).toMatchObject({ code: "ERR_QUERY_PARAMETER", parameter: "note" });
    expect(`${err.message}${JSON.stringify(err)}`).not.toContain("12345678");
    await expect(runApprovedQuery(engine, byNote, { note: "x".repeat(4097) })).rejects.toMatchObject({
      code: "ERR_QUERY_PARAMETER",
    });
  });

  it("serialises results deterministically, in canonical row order", async () => {
    const q = aggregation(
      "SELECT x.note AS note, count(*) AS c FROM notes x WHERE x.note <> $skip GROUP BY x.note",
      [{ name: "skip", type: "VARCHAR" }],
      ["note", "c"],
    );
    const a = await runApprovedQuery(engine, q, { skip: SECRET });
    const b = await runApprovedQuery(engine, q, { skip: SECRET });
    expect(resultToJson(a)).toBe(resultToJson(b));
    expect(resultToCsv(a)).toBe(`note,c\n"n0, ok",490\n"n1, ok",490\n"n2, ok",490\nx' OR 1=1 --,15\n`);
    expect(JSON.parse(resultToJson(a))).toEqual({
      columns: [
        { name: "note", type: "VARCHAR" },
        { name: "c", type: "BIGINT" },
      ],
      rows: [
        ["n0, ok", "490"],
        ["n1, ok", "490"],
        ["n2, ok", "490"],
        [INJECTED, "15"],
      ],
    });
  });
});

describe("parameter validator (property)", () => {
  const types = ["VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP"] as const;
  const accepts: Record<(typeof types)[number], (v: unknown) => boolean> = {
    VARCHAR: (v) => typeof v === "string",
    BIGINT: (v) =>
      typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v)) || typeof v === "string",
    DOUBLE: (v) => typeof v === "number",
    BOOLEAN: (v) => typeof v === "boolean",
    DATE: (v) => typeof v === "string",
    TIMESTAMP: (v) => typeof v === "string",
  };

  it("throws only ParameterError, never quoting the value, on values of other types", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.anything({ withBigInt: true, withDate: true, withMap: true }),
        (type, value) => {
          fc.pre(!accepts[type](value));
          try {
            validateParameters([{ name: "p", type }], { p: value });
            return false;
          } catch (e) {
            const err = e as { code?: string; parameter?: string; message: string };
            return (
              err.code === "ERR_QUERY_PARAMETER" &&
              err.parameter === "p" &&
              err.message ===
                `parameter p: ${value === null || value === undefined ? "missing" : `not a valid ${type}`}`
            );
          }
        },
      ),
    );
  });

  it("either accepts or throws ParameterError on arbitrary strings for every type", () => {
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.string({ unit: "binary", maxLength: 64 }), (type, value) => {
        try {
          validateParameters([{ name: "p", type }], { p: value });
          return true;
        } catch (e) {
          return (e as { code?: string }).code === "ERR_QUERY_PARAMETER";
        }
      }),
    );
  });

  it("accepts valid dates and rejects impossible ones", () => {
    expect(() => validateParameters([{ name: "d", type: "DATE" }], { d: "2024-02-29" })).not.toThrow();
    expect(() => validateParameters([{ name: "d", type: "DATE" }], { d: "2023-02-29" })).toThrow(
      /not a valid DATE/,
    );
    expect(() =>
      validateParameters([{ name: "t", type: "TIMESTAMP" }], { t: "2024-01-01T24:00:00Z" }),
    ).toThrow(/not a valid TIMESTAMP/);
    expect(() => validateParameters([{ name: "b", type: "BIGINT" }], { b: 2n ** 63n })).toThrow(
      /not a valid BIGINT/,
    );
    expect(() =>
      validateParameters([{ name: "b", type: "BIGINT" }], { b: "9223372036854775807" }),
    ).not.toThrow();
  });
});
