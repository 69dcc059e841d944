import { readdirSync } from "node:fs";
import { Readable } from "node:stream";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { csvSegments, lastBoundary } from "../../enclave/sql/csv-segments.js";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { csvStream, hex, people } from "./helpers.js";

const enc = new TextEncoder();

/** RFC 4180 field: plain, or quoted with commas, doubled quotes, LF and CRLF inside. */
const field = fc.oneof(
  fc.stringMatching(/^[a-z0-9 ]{0,6}$/),
  fc
    .array(fc.constantFrom("a", ",", '""', "\n", "\r\n", " "), { maxLength: 6 })
    .map((xs) => `"${xs.join("")}"`),
);
const record = fc.array(field, { minLength: 1, maxLength: 4 }).map((fs) => fs.join(","));
const csv = fc
  .tuple(fc.array(record, { minLength: 1, maxLength: 30 }), fc.constantFrom("\n", "\r\n"), fc.boolean())
  .map(([records, eol, trailing]) => records.join(eol) + (trailing ? eol : ""));

/** Offsets just past each record terminator, by a straightforward reference scan. */
function recordEnds(text: string): Set<number> {
  const ends = new Set<number>();
  let quoted = false;
  const bytes = enc.encode(text);
  bytes.forEach((b, i) => {
    if (b === 0x22) quoted = !quoted;
    else if (b === 0x0a && !quoted) ends.add(i + 1);
  });
  return ends;
}

function chunked(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length] ?? 1);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

async function collect(chunks: Uint8Array[], target: number): Promise<Uint8Array[][]> {
  const out: Uint8Array[][] = [];
  for await (const s of csvSegments(Readable.from(chunks), target)) out.push(s.parts);
  return out;
}

const join = (parts: Uint8Array[]) => Buffer.concat(parts);

describe("csvSegments", () => {
  it("cuts only at record boundaries and loses or repeats no byte", async () => {
    await fc.assert(
      fc.asyncProperty(
        csv,
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 200 }),
        async (text, sizes, target) => {
          const bytes = enc.encode(text);
          const segments = await collect(chunked(bytes, sizes), target);
          expect(Buffer.concat(segments.map(join)).equals(Buffer.from(bytes))).toBe(true);
          const ends = recordEnds(text);
          let at = 0;
          for (const [i, s] of segments.entries()) {
            at += join(s).length;
            if (i < segments.length - 1) {
              expect(ends.has(at)).toBe(true);
              expect(join(s).length).toBeGreaterThanOrEqual(Math.min(target, 1));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("keeps a quoted newline inside its segment", async () => {
    const segments = await collect(
      ['a,"x\n', 'y"\n', "b,c\n"].map((t) => enc.encode(t)),
      1,
    );
    expect(segments.map((s) => join(s).toString())).toEqual(['a,"x\ny"\n', "b,c\n"]);
  });

  it("finds no boundary inside an open quote", () => {
    expect(lastBoundary(enc.encode("x\ny\n"), true)).toBe(-1);
    expect(lastBoundary(enc.encode('"\nz\n'), true)).toBe(4);
    expect(lastBoundary(enc.encode('z\n"\n'), true)).toBe(4);
    expect(lastBoundary(enc.encode('z\n"x\n'), false)).toBe(2);
    expect(lastBoundary(enc.encode('z\n"\n'), false)).toBe(2);
    expect(lastBoundary(enc.encode("no newline"), false)).toBe(-1);
  });
});

const header = "id,age,joined,score\n";
const rows = (n: number) =>
  Array.from({ length: n }, (_, i) => `"${hex(i)}",${i},2024-01-01,"${i}.5"\n`).join("");

describe("segmented CSV ingest", () => {
  let engine: SqlEngine;
  beforeEach(async () => {
    engine = await openEngine();
  });
  afterEach(() => engine.close());

  it("loads the same table whatever the segment size, with at most two segment files at once", async () => {
    const text = header + rows(200);
    let most = 0;
    async function* watched() {
      for (const chunk of chunked(enc.encode(text), [97])) {
        most = Math.max(most, readdirSync(engine.scratchDir).length);
        yield chunk;
      }
    }
    const report = await ingestDataset(engine, people, Readable.from(watched()), { segmentBytes: 500 });
    expect(report.rowsAccepted).toBe(200);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2);
    const r = await engine.connection.runAndReadAll(
      "SELECT sum(age)::BIGINT, count(DISTINCT id) FROM people",
    );
    expect(r.getRows()).toEqual([[19900n, 200n]]);
    expect(readdirSync(engine.scratchDir)).toEqual([]);
  });

  it("numbers a bad row across segments", async () => {
    const text = `${header}${rows(30)}${hex(99)},BAD,2024-01-01,1\n${rows(5)}`;
    const err = await ingestDataset(engine, people, csvStream(text, 64), { segmentBytes: 100 }).catch(
      (e) => e,
    );
    expect(err).toMatchObject({ code: "ERR_INGEST_SCHEMA", row: 31, column: "age" });
  });

  it("reports a failing source, not the rows already refused, and leaves nothing", async () => {
    async function* source() {
      yield enc.encode(`${header}${hex(1)},NOT-A-NUMBER,2024-01-01,1\n`);
      yield enc.encode(rows(20));
      throw new Error("digest differs");
    }
    const err = await ingestDataset(engine, people, Readable.from(source()), { segmentBytes: 1 }).catch(
      (e) => e,
    );
    expect(err).toMatchObject({ code: "ERR_INGEST_FAILED" });
    const t = await engine.connection.runAndReadAll("SELECT count(*) FROM duckdb_tables()");
    expect(t.getRows()).toEqual([[0n]]);
    expect(readdirSync(engine.scratchDir)).toEqual([]);
  });
});

describe("compressed storage under concurrent loads", () => {
  it("loads two datasets at once, both complete and compressed once the loads are over", async () => {
    const engine = await openEngine({ compress: true });
    try {
      const text = header + rows(20_000);
      const [a, b] = await Promise.all(
        ["people_a", "people_b"].map((id) =>
          ingestDataset(engine, { ...people, id }, csvStream(text, 65536), { segmentBytes: 100_000 }),
        ),
      );
      expect([a?.rowsAccepted, b?.rowsAccepted]).toEqual([20_000, 20_000]);
      const conn = await engine.connect();
      expect(await engine.compact(conn)).toBe(true);
      for (const id of ["people_a", "people_b"]) {
        const r = await conn.runAndReadAll(
          `SELECT count(*) FILTER (WHERE compression = 'Uncompressed' AND segment_type = 'VARCHAR') FROM pragma_storage_info('${id}')`,
        );
        expect(r.getRows()).toEqual([[0n]]);
      }
      conn.closeSync();
    } finally {
      engine.close();
    }
  });
});
