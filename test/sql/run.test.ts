import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { validateParameters } from "../../enclave/sql/params.js";
import { resultToCsv, resultToJson, runApprovedQuery } from "../../enclave/sql/run.js";
import type { ApprovedQuery, Dataset, Parameter } from "../../protocol/contract/types.js";
import { csvStream, hex } from "./helpers.js";

const SECRET = "SECRET-TOKEN-7f3a";
const notes: Dataset = {
  id: "notes",
  owner: "p",
  format: "csv",
  columns: [
    { name: "id", type: "VARCHAR" },
    { name: "note", type: "VARCHAR" },
    { name: "day", type: "DATE" },
    { name: "seen_at", type: "TIMESTAMP" },
    { name: "n", type: "BIGINT" },
  ],
  identityColumn: "id",
};

let engine: SqlEngine;
beforeAll(async () => {
  engine = await openEngine({ queryTimeoutMs: 300, maxResultRows: 1000 });
  const lines = ["id,note,day,seen_at,n"];
  for (let i = 0; i < 1500; i++)
    lines.push(
      `${hex(i)},${i === 7 ? SECRET : `"n${i % 3}, ok"`},2024-01-0${1 + (i % 5)},2024-01-01 10:00:0${i % 10},${i}`,
    );
  lines[1] = `${hex(0)},"x' OR 1=1 --",2024-01-01,2024-01-01 10:00:00,0`;
  await ingestDataset(engine, notes, csvStream(`${lines.join("\n")}\n`, 65536));
});
afterAll(() => engine.close());

const rowLevel = (sql: string, parameters: Parameter[], allowed: string[]): ApprovedQuery => ({
  id: "row-q",
  sql,
  parameters,
  runners: ["p"],
  recipients: ["p"],
  policy: { kind: "row-level", minDistinctIdentities: 1, allowedColumns: allowed },
});

describe("runApprovedQuery", () => {
  const byNote = rowLevel(
    "SELECT n FROM notes WHERE note = $note ORDER BY n",
    [{ name: "note", type: "VARCHAR" }],
    ["n"],
  );

  it("binds a value crafted as SQL as a plain value", async () => {
    const injected = await runApprovedQuery(engine, byNote, { note: "x' OR 1=1 --" });
    expect(injected.rows).toEqual([["0"]]);
    const none = await runApprovedQuery(engine, byNote, { note: "' OR '1'='1" });
    expect(none.rows).toEqual([]);
  });

  it("binds DATE, TIMESTAMP and BIGINT in their accepted forms", async () => {
    const q = rowLevel(
      "SELECT count(*) AS c FROM notes WHERE day = $day AND seen_at >= $at AND n < $max",
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
    // i % 5 == 1 and i % 10 >= 5 and i < 100: i in {1..99} with i%10 == 6 -> 10 rows
    expect(base.rows).toEqual([["10"]]);
    const sameAsString = await runApprovedQuery(engine, q, {
      day: "2024-01-02",
      at: "2024-01-01 12:00:05+02:00",
      max: "100",
    });
    expect(sameAsString.rows).toEqual([["10"]]);
  });

  it("replaces an engine error that would quote a value with the generic error", async () => {
    const q = rowLevel("SELECT CAST(note AS INTEGER) AS v FROM notes WHERE n = 7", [], ["v"]);
    const err = await runApprovedQuery(engine, q, {}).catch((e) => e);
    expect(err.code).toBe("ERR_QUERY_FAILED");
    expect(err.message).toBe("query failed inside the clean room");
    expect(String(err.cause)).toContain(SECRET); // the engine did quote it: that is why it is hidden
    for (const text of [err.message, err.code, JSON.stringify(err), String(err), err.stack ?? ""]) {
      expect(text).not.toContain(SECRET);
    }
  });

  it("interrupts a query past the timeout", async () => {
    const slow = rowLevel(
      "SELECT count(*) AS c FROM notes a, notes b, notes c WHERE a.n + b.n + c.n = -1",
      [],
      ["c"],
    );
    const started = Date.now();
    await expect(runApprovedQuery(engine, slow, {})).rejects.toMatchObject({ code: "ERR_QUERY_TIMEOUT" });
    expect(Date.now() - started).toBeLessThan(5000);
    // the connection is usable again afterwards
    await expect(runApprovedQuery(engine, byNote, { note: SECRET })).resolves.toMatchObject({
      rows: [["7"]],
    });
  });

  it("refuses results over the row cap", async () => {
    const all = rowLevel("SELECT n FROM notes", [], ["n"]);
    await expect(runApprovedQuery(engine, all, {})).rejects.toMatchObject({
      code: "ERR_QUERY_RESULT_TOO_LARGE",
    });
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

  it("serialises results deterministically", async () => {
    const q = rowLevel("SELECT note, n FROM notes WHERE n < 3 ORDER BY n", [], ["note", "n"]);
    const a = await runApprovedQuery(engine, q, {});
    const b = await runApprovedQuery(engine, q, {});
    expect(resultToJson(a)).toBe(resultToJson(b));
    expect(resultToCsv(a)).toBe(`note,n\nx' OR 1=1 --,0\n"n1, ok",1\n"n2, ok",2\n`);
    expect(JSON.parse(resultToJson(a))).toEqual({
      columns: [
        { name: "note", type: "VARCHAR" },
        { name: "n", type: "BIGINT" },
      ],
      rows: [
        ["x' OR 1=1 --", "0"],
        ["n1, ok", "1"],
        ["n2, ok", "2"],
      ],
      groupsSuppressed: 0,
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
    ).toThrow();
    expect(() => validateParameters([{ name: "b", type: "BIGINT" }], { b: 2n ** 63n })).toThrow();
    expect(() =>
      validateParameters([{ name: "b", type: "BIGINT" }], { b: "9223372036854775807" }),
    ).not.toThrow();
  });
});
