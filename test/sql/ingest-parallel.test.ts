/**
 * The parallel CSV load (enclave/sql/ingest.ts): several segments appended at once on their own
 * connections give the same table, the same report and the same first refused row as one at a
 * time; the scratch directory never holds more segment files than segments in flight; pieces
 * whose quotes the decrypt workers counted are cut exactly like raw bytes; the engine's default
 * thread count is the machine's.
 */
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Readable } from "node:stream";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { type CsvPiece, csvSegments } from "../../enclave/sql/csv-segments.js";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { csvStream, dataset, hex, people } from "./helpers.js";

const engines: SqlEngine[] = [];
async function engine(o: Parameters<typeof openEngine>[0] = {}): Promise<SqlEngine> {
  const e = await openEngine({ threads: 2, ...o });
  engines.push(e);
  return e;
}
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
});

const header = "id,age,joined,score\n";
const row = (i: number) =>
  `${hex(i % 97)},${i % 90},2024-01-${String((i % 28) + 1).padStart(2, "0")},${i / 4}\n`;
const rows = (n: number) => Array.from({ length: n }, (_, i) => row(i)).join("");

async function contents(e: SqlEngine, table = "people"): Promise<string[]> {
  const r = await e.connection.runAndReadAll(`SELECT * FROM ${table}`);
  return r
    .getRowsJson()
    .map((x) => JSON.stringify(x))
    .sort();
}

async function tables(e: SqlEngine): Promise<string[]> {
  const r = await e.connection.runAndReadAll("SELECT table_name FROM duckdb_tables() ORDER BY 1");
  return r.getRows().map((x) => String(x[0]));
}

describe("parallel segment load", () => {
  it("gives the same table and report with 1, 2 or 5 segments in flight", async () => {
    const csv = `${header}${rows(400)}`;
    const seen: { table: string[]; report: unknown }[] = [];
    for (const concurrentSegments of [1, 2, 5]) {
      const e = await engine();
      const report = await ingestDataset(e, people, csvStream(csv, 333), {
        segmentBytes: 500,
        concurrentSegments,
      });
      seen.push({ table: await contents(e), report });
    }
    expect(seen[0]!.table).toHaveLength(400);
    expect(seen[0]!.report).toMatchObject({ rowsAccepted: 400, identity: { duplicates: 400 - 97 } });
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[2]).toEqual(seen[0]);
  });

  it("refuses with the first bad row of the file, whichever segment finishes first", async () => {
    const lines = rows(300).split("\n");
    // Bad values in three segments; the earliest (data row 120) is the one reported.
    lines[119] = `${hex(1)},not-a-number,2024-01-01,1`;
    lines[200] = `${hex(1)},1,2024-13-45,1`;
    lines[280] = `${hex(1)},1`;
    const csv = `${header}${lines.join("\n")}`;
    for (const concurrentSegments of [1, 3, 8]) {
      const e = await engine();
      const err = await ingestDataset(e, people, csvStream(csv, 1000), {
        segmentBytes: 700,
        concurrentSegments,
      }).catch((x) => x);
      expect(err).toMatchObject({ code: "ERR_INGEST_SCHEMA", row: 120, column: "age" });
      expect(await tables(e)).toEqual([]);
      expect(readdirSync(e.scratchDir).filter((f) => f.endsWith(".csv"))).toEqual([]);
    }
  });

  it("counts rejected rows across concurrent segments in reject mode", async () => {
    const lines = rows(200).split("\n");
    for (const i of [3, 50, 51, 150, 199]) lines[i] = `${hex(2)},x,2024-01-01,1`;
    const e = await engine();
    const report = await ingestDataset(e, people, csvStream(`${header}${lines.join("\n")}`, 512), {
      mode: "reject",
      segmentBytes: 400,
      concurrentSegments: 4,
    });
    expect(report).toMatchObject({ rowsAccepted: 195, rowsRejected: 5 });
  });

  it("keeps at most `concurrentSegments` segment files in the scratch directory", async () => {
    const e = await engine();
    let most = 0;
    const text = new TextEncoder().encode(`${header}${rows(2000)}`);
    async function* watched(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < text.length; i += 256) {
        most = Math.max(most, readdirSync(e.scratchDir).filter((f) => f.endsWith(".csv")).length);
        yield text.subarray(i, i + 256);
        await new Promise((r) => setImmediate(r));
      }
    }
    await ingestDataset(e, people, watched(), { segmentBytes: 2000, concurrentSegments: 3 });
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(3);
    expect(await contents(e)).toHaveLength(2000);
  });

  it("loads concurrent segments into compressed storage", async () => {
    const e = await engine({ compress: true });
    const report = await ingestDataset(e, people, csvStream(`${header}${rows(600)}`, 4096), {
      segmentBytes: 1000,
      concurrentSegments: 3,
    });
    expect(report.rowsAccepted).toBe(600);
    const r = await e.connection.runAndReadAll("SELECT count(*) FROM tables.people");
    expect(Number(r.getRows()[0]?.[0])).toBe(600);
  });
});

describe("duplicates never count a missing identity", () => {
  const cases = [
    ["sha256-hex text", people, [hex(1), hex(2), hex(3)], ",1,2024-01-01,1"],
    ["any text", { ...people, identityFormat: "any" as const }, ["a", "b", "c"], ",1,2024-01-01,1"],
    ["BIGINT", dataset("people", "acme", { id: "BIGINT", age: "INTEGER" }), ["1", "2", "3"], ",1"],
  ] as const;
  it.each(cases)("%s identity with NULLs", async (_name, ds, ids, rest) => {
    const cols = ds.columns.map((c) => c.name).join(",");
    // Three distinct present identities and three rows without one (empty, quoted empty, empty):
    // no duplicates at all (a NULL's hash counted as an identity would make it -1).
    const missing = ["", '""', ""].map((id) => `${id}${rest}\n`).join("");
    const csv = `${cols}\n${ids.map((id) => `${id}${rest}\n`).join("")}${missing}`;
    const e = await engine();
    const report = await ingestDataset(e, ds, csvStream(csv), { segmentBytes: 10, concurrentSegments: 2 });
    expect(report).toMatchObject({ rowsAccepted: 3, droppedNullIdentity: 3, identity: { duplicates: 0 } });
  });
});

describe("csvSegments with counted quotes", () => {
  const field = fc.oneof(
    fc.stringMatching(/^[a-z0-9 ]{0,6}$/),
    fc.array(fc.constantFrom("a", ",", '""', "\n", " "), { maxLength: 6 }).map((xs) => `"${xs.join("")}"`),
  );
  const csv = fc
    .array(fc.array(field, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 30 })
    .map((records) => `${records.map((r) => r.join(",")).join("\n")}\n`);

  it("cuts pieces that carry their quote count exactly where it cuts raw bytes", async () => {
    await fc.assert(
      fc.asyncProperty(
        csv,
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 120 }),
        async (text, size, target) => {
          const bytes = new TextEncoder().encode(text);
          const raw: Uint8Array[] = [];
          for (let i = 0; i < bytes.length; i += size) raw.push(bytes.subarray(i, i + size));
          const counted: CsvPiece[] = raw.map((b) => ({
            bytes: b,
            quotes: b.filter((x) => x === 0x22).length,
          }));
          const collect = async (src: AsyncIterable<Uint8Array | CsvPiece>) => {
            const out: string[] = [];
            for await (const s of csvSegments(src, target)) out.push(Buffer.concat(s.parts).toString());
            return out;
          };
          const fromRaw = await collect(Readable.from(raw));
          expect(await collect(Readable.from(counted))).toEqual(fromRaw);
          expect(fromRaw.join("")).toBe(text);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("engine threads", () => {
  it("defaults to the CPUs available, and an explicit count overrides it", async () => {
    const setting = async (e: SqlEngine) =>
      Number((await e.connection.runAndReadAll("SELECT current_setting('threads')")).getRows()[0]?.[0]);
    const byDefault = await openEngine();
    engines.push(byDefault);
    expect(byDefault.threads).toBe(availableParallelism());
    expect(await setting(byDefault)).toBe(availableParallelism());
    const one = await engine({ threads: 1 });
    expect(one.threads).toBe(1);
    expect(await setting(one)).toBe(1);
  });
});
