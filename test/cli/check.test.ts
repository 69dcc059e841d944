/**
 * `cleanroom check`: each way a readable-but-wrong file goes wrong is reported by line and
 * column in words, never with the value; chunk boundaries change nothing; a good file passes;
 * the CLI exits 1 on findings.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkFile } from "../../client/node/check-file.js";
import { type CheckReport, checkCsv, valueProblem } from "../../client/sdk/check.js";
import type { Dataset } from "../../protocol/contract/types.js";
import { dataset as csvDataset } from "../sql/helpers.js";
import { cli } from "./main-cli.js";

const dataset: Dataset = csvDataset(
  "purchases",
  "alice",
  { user_id: "VARCHAR", purchase_ts: "TIMESTAMP", amount: "DOUBLE", items: "BIGINT" },
  { dimensions: ["purchase_ts"] },
  "sha256-hex",
);

const ID = "3f".repeat(32);
const ID2 = "a0".repeat(32);
const HEADER = "user_id,purchase_ts,amount,items\n";
const ROW = `${ID},2024-04-01 10:00:00,12.50,2\n`;

async function* chunks(bytes: Uint8Array, size = bytes.length || 1): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
const text = (s: string) => new TextEncoder().encode(s);
const check = (input: string | Uint8Array, size?: number): Promise<CheckReport> =>
  checkCsv(chunks(typeof input === "string" ? text(input) : input, size), dataset);

describe("a good file", () => {
  it("passes, counting rows and rows without an identity", async () => {
    const r = await check(`\uFEFF${HEADER}${ROW}${ID2},2024-04-02,"1.5e3",\n,2024-04-02 10:00,3,1\n`);
    expect(r).toMatchObject({ ok: true, rows: 3, rowsWithoutIdentity: 1, problems: [], counts: {} });
  });

  it("passes CRLF lines, whatever line breaks quoted fields hold", async () => {
    const crlf = (s: string) => s.replaceAll("\n", "\r\n");
    const r = await check(`${crlf(HEADER)}${crlf(ROW)}${ID2},2024-04-02,"1.5e3","a\nb"\r\n`, 3);
    expect(r.problems.filter((p) => p.code === "LINE_ENDING")).toEqual([]);
  });
});

describe("each problem, by line and column, in words", () => {
  const first = async (input: string | Uint8Array) => (await check(input)).problems[0];

  it("an empty file", async () => {
    expect(await check("")).toMatchObject({ ok: false, problems: [{ code: "EMPTY" }] });
  });

  it("a header and no rows", async () => {
    expect(await first(HEADER)).toMatchObject({ code: "NO_ROWS", line: 2 });
  });

  it("missing, extra and reordered columns, named", async () => {
    expect((await check(`user_id,purchase_ts,amount\n${ID},2024-04-01,1\n`)).problems).toEqual([
      {
        code: "HEADER_MISSING",
        line: 1,
        message: "missing column items (dataset purchases declares user_id, purchase_ts, amount, items)",
      },
    ]);
    expect(await first(`user_id,purchase_ts,amount,items,store\n${ROW}`)).toMatchObject({
      code: "HEADER_EXTRA",
      message: expect.stringMatching(/^column store is not in the contract/),
    });
    expect(await first(`purchase_ts,user_id,amount,items\n${ROW}`)).toMatchObject({
      code: "HEADER_ORDER",
      message:
        "the columns are in another order: the contract has user_id, purchase_ts, amount, items; the file has purchase_ts, user_id, amount, items",
    });
  });

  it("lines that do not end as the header line does", async () => {
    const r = await check(`${HEADER}${ROW}${ROW.replace("\n", "\r\n")}${ROW.replace("\n", "\r")}${ROW}`, 5);
    expect(r.problems).toEqual([
      {
        code: "LINE_ENDING",
        line: 3,
        message:
          "the line ends with CRLF where the header line ends with LF: save the file with one line ending throughout",
      },
      {
        code: "LINE_ENDING",
        line: 4,
        message:
          "the line ends with CR where the header line ends with LF: save the file with one line ending throughout",
      },
    ]);
    expect(await first(`${HEADER.replace("\n", "\r")}${ROW}`)).toMatchObject({
      code: "LINE_ENDING",
      line: 1,
    });
  });

  it("upper-case headers", async () => {
    expect(await first(`USER_ID,purchase_ts,amount,items\n${ROW}`)).toMatchObject({
      code: "HEADER_CASE",
      column: "user_id",
      message: "the header writes USER_ID; the contract declares user_id (column names are case-sensitive)",
    });
  });

  it("an identity column still holding e-mails under another name gets the command that fixes it", async () => {
    const p = await first(`email,purchase_ts,amount,items\na@b.c,2024-04-01,1,1\n`);
    expect(p?.message).toContain(
      "cleanroom hash-ids --column email --kind email --as user_id IN.csv OUT.csv",
    );
  });

  it("';' separators", async () => {
    expect(await first(`user_id;purchase_ts;amount;items\n${ID};2024-04-01;1;1\n`)).toMatchObject({
      code: "SEPARATOR",
      line: 1,
      message: expect.stringMatching(
        /separated by ';' \(semicolons\); .*export the file with ',' as the separator/,
      ),
    });
  });

  it("Latin-1 text, at the line where it starts", async () => {
    const latin1 = Buffer.concat([text(`${HEADER}${ROW}${ROW}`), Buffer.from("caf\xe9,x,1,1\n", "latin1")]);
    const p = await first(latin1);
    expect(p).toMatchObject({ code: "ENCODING", line: 4 });
    expect(p?.message).toMatch(/not UTF-8 .*Latin-1 .*CSV UTF-8/);
    // The same in small chunks: the byte may arrive anywhere.
    expect((await check(latin1, 7)).problems[0]).toMatchObject({ code: "ENCODING" });
  });

  it("non-numeric amounts, with what they look like, never the value", async () => {
    const r = await check(
      `${HEADER}${ROW}${ID},2024-04-01,"12,50",1\n${ID},2024-04-01,$3,1\n${ID},2024-04-01,1,two\n`,
    );
    expect(r.problems).toEqual([
      {
        code: "VALUE",
        line: 3,
        row: 2,
        column: "amount",
        message: "DOUBLE column: not a number (a decimal comma: write it with a point, e.g. 12.50)",
      },
      {
        code: "VALUE",
        line: 4,
        row: 3,
        column: "amount",
        message: "DOUBLE column: not a number (a currency sign: write the number alone)",
      },
      { code: "VALUE", line: 5, row: 4, column: "items", message: "BIGINT column: not a whole number" },
    ]);
    for (const p of r.problems) expect(p.message).not.toMatch(/12,50|\$3|two/);
  });

  it("unhashed e-mails and phone numbers, upper-case hashes, counted in full past the list", async () => {
    const rows = Array.from({ length: 25 }, (_, i) => `user${i}@example.com,2024-04-01,1,1\n`).join("");
    const r = await checkCsv(
      chunks(text(`${HEADER}${rows}+44 20 7946 0000,2024-04-01,1,1\n${ID.toUpperCase()},2024-04-01,1,1\n`)),
      dataset,
      {
        maxProblems: 3,
      },
    );
    expect(r.problems).toHaveLength(3);
    expect(r.problems[0]).toMatchObject({
      code: "IDENTITY",
      line: 2,
      row: 1,
      column: "user_id",
      message:
        "an e-mail address in the clear: hash the column first: cleanroom hash-ids --column user_id --kind email --as user_id IN.csv OUT.csv",
    });
    expect(r.counts).toEqual({ IDENTITY: 27 });
    const phone = await check(`${HEADER}+44 20 7946 0000,2024-04-01,1,1\n`);
    expect(phone.problems[0]?.message).toMatch(/^a phone number in the clear/);
    const upper = await check(`${HEADER}${ID.toUpperCase()},2024-04-01,1,1\n`);
    expect(upper.problems[0]?.message).toBe("an upper-case SHA-256: write it in lower case (hash-ids does)");
  });

  it("rows with too many values, quotes that never end, other file types", async () => {
    expect(await first(`${HEADER}${ID},2024-04-01,1,1,extra\n`)).toMatchObject({ code: "FIELDS", line: 2 });
    expect(await first(`${HEADER}${ID},"2024-04-01,1,1\n`)).toMatchObject({ code: "QUOTE", line: 2 });
    expect(await first(new Uint8Array([0x50, 0x41, 0x52, 0x31, 0, 0]))).toMatchObject({
      code: "NOT_CSV",
      message: "this is a Parquet file, not a CSV file (dataset purchases is declared as CSV)",
    });
    expect(await first(new Uint8Array([0x1f, 0x8b, 8, 0]))).toMatchObject({ code: "NOT_CSV" });
  });

  it("a quoted value may span lines: line numbers count them", async () => {
    const r = await check(`${HEADER}${ID},2024-04-01,1,1\n"${ID}\n",2024-04-01,1,1\n${ID},2024-04-01,x,1\n`);
    expect(r.problems.map((p) => [p.code, p.line, p.row])).toEqual([
      ["IDENTITY", 3, 2],
      ["VALUE", 5, 3],
    ]);
  });
});

describe("values as DuckDB reads them", () => {
  it.each([
    ["BIGINT", "42"],
    ["BIGINT", " -7 "],
    ["BIGINT", "1e3"],
    ["BIGINT", "0x10"],
    ["DOUBLE", "1.5e-3"],
    ["DOUBLE", ".5"],
    ["DOUBLE", "inf"],
    ["BOOLEAN", "Yes"],
    ["DATE", "2024-2-29"],
    ["TIMESTAMP", "2024-04-01T10:00:00Z"],
    ["TIMESTAMP", "2024-04-01"],
  ] as const)("%s accepts %j", (type, v) => {
    expect(valueProblem(type, v)).toBeUndefined();
  });

  it.each([
    ["INTEGER", "3000000000", "out of range for INTEGER"],
    ["DOUBLE", "1.234,5", "not a number (thousands separators: write the digits alone)"],
    ["BOOLEAN", "maybe", "not true or false"],
    ["DATE", "2023-02-29", "not a date YYYY-MM-DD"],
    ["DATE", "01/04/2024", "a day-first or month-first date: write dates as YYYY-MM-DD"],
    ["TIMESTAMP", "2024-04-01 25:00", "not a time YYYY-MM-DD hh:mm:ss"],
  ] as const)("%s refuses %j", (type, v, why) => {
    expect(valueProblem(type, v)).toBe(why);
  });
});

describe("streaming", () => {
  it("any chunking gives the same report", async () => {
    const input = text(
      `${HEADER}${ROW}"${ID}",2024-04-01,"1.5",3\r\n${ID},2024-04-01,x,1\nüser@example.com,2024-04-01,1,1\n${ID},"a""b",1,1\n`,
    );
    const whole = await check(input);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), async (size) => {
        expect(await check(input, size)).toEqual(whole);
      }),
      { numRuns: 40 },
    );
  });
});

describe("the command", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cleanroom-check-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("checks a file on disk against the contract's dataset; exit 0 or 1", async () => {
    const { makeContract, makeParty } = await import("../client/setup.js");
    const contract = makeContract(await makeParty("alice"), await makeParty("bob"));
    await writeFile(join(dir, "contract.json"), JSON.stringify(contract));
    await writeFile(join(dir, "good.csv"), `email_sha256,amount\n${ID},1\n`);
    await writeFile(join(dir, "bad.csv"), `Email_SHA256,amount\n${ID},1\n`);
    const args = ["--contract", join(dir, "contract.json"), "--dataset", "purchases"];
    const good = await cli("check", join(dir, "good.csv"), ...args);
    expect(good).toMatchObject({
      code: 0,
      out: `✓ ${join(dir, "good.csv")}: 1 rows match dataset purchases\n`,
    });
    const bad = await cli("check", join(dir, "bad.csv"), ...args);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("✗ line 1, column email_sha256: the header writes Email_SHA256");
    // A Parquet dataset's file is checked for being Parquet.
    const parquet = { ...contract.datasets[0]!, format: "parquet" as const };
    expect((await checkFile(join(dir, "good.csv"), parquet)).problems[0]?.code).toBe("NOT_PARQUET");
  });
});
