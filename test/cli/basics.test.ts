/**
 * The program's manners: --version, help for a bare `cleanroom`, a real usage message for a group
 * without its subcommand, --json as one JSON document on stdout (messages on stderr) on every
 * command that runs offline, and file errors that name the path.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../../client/cli/program.js";
import { contractDigestHex } from "../../client/sdk/contract.js";
import { verifyApprovals } from "../../protocol/contract/sign.js";
import { makeContract, makeParty, type TestParty } from "../client/setup.js";
import { cli, contractInitArgs, hashEmailsArgs, noCleanroomEnv, withEnv } from "./main-cli.js";

let dir: string;
let alice: TestParty;
let bob: TestParty;
const f = (name: string) => join(dir, name);
const run = (...argv: string[]) => withEnv(noCleanroomEnv(), () => cli(...argv));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cleanroom-basics-"));
  [alice, bob] = await Promise.all([makeParty("alice"), makeParty("bob")]);
  await writeFile(f("contract.json"), JSON.stringify(makeContract(alice, bob)));
  await writeFile(f("alice.key"), JSON.stringify(alice.file));
  await writeFile(f("bob.key"), JSON.stringify(bob.file));
  await writeFile(f("emails.csv"), "email,amount\nAlice@Example.com,3\n");
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe("the program", () => {
  it("--version prints the package's version", async () => {
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8"));
    expect(await run("--version")).toMatchObject({ code: 0, out: `${pkg.version}\n`, err: "" });
  });

  it("bare `cleanroom` prints the help on stdout and exits 0", async () => {
    const r = await run();
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: cleanroom \[options\] \[command\]/);
    for (const c of ["init", "check", "status", "results", "upload", "grant", "query"]) {
      expect(r.out).toMatch(new RegExp(`\\n  ${c}\\b`));
    }
  });

  it("a command group without its subcommand is a usage error that says so", async () => {
    const r = await run("contract");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/error ERR_USAGE: a subcommand is missing; see cleanroom --help\n$/);
    expect(r.err).not.toContain("(outputHelp)");
  });

  it("every command that sends or reads data offers --json", () => {
    const missing: string[] = [];
    const visit = (c: ReturnType<typeof buildProgram>, path: string[]) => {
      if (c.commands.length === 0 && !c.options.some((o) => o.long === "--json"))
        missing.push(path.join(" "));
      for (const sub of c.commands) visit(sub, [...path, sub.name()]);
    };
    visit(buildProgram(), []);
    expect(missing).toEqual([]);
  });
});

describe("--json: one document on stdout, people's lines on stderr", () => {
  const json = (out: string) => JSON.parse(out) as Record<string, unknown>;

  it("keygen, contract init, digest, sign, hash-ids, check", async () => {
    const k = await run("keygen", "--out", f("new.key"), "--json");
    expect(k.code).toBe(0);
    expect(json(k.out).ageRecipient).toMatch(/^age1/);

    const init = await run(
      ...contractInitArgs({ adv: f("alice.key"), pub: f("bob.key") }, f("template.json")),
      "--json",
    );
    expect(init.code, init.err).toBe(0);
    expect(json(init.out)).toMatchObject({ contract: f("template.json"), samples: [] });

    const d = await run("contract", "digest", f("contract.json"), "--json");
    expect(json(d.out)).toEqual({
      contract: "acme-news-q3",
      file: f("contract.json"),
      digest: await contractDigestHex(makeContract(alice, bob)),
    });

    const s = await run("contract", "sign", f("contract.json"), "--key", f("alice.key"), "--yes", "--json");
    expect(s.code, s.err).toBe(0);
    expect(s.err).toMatch(/^signing contract acme-news-q3/);
    const signed = json(s.out) as { approval: string; party: string };
    expect(signed.party).toBe("alice");
    const b = await run("contract", "sign", f("contract.json"), "--key", f("bob.key"), "--yes", "--json");
    const both = [signed.approval, (json(b.out) as { approval: string }).approval];
    await expect(verifyApprovals(makeContract(alice, bob), both)).resolves.toMatchObject({
      approvals: [{ party: "alice" }, { party: "bob" }],
    });

    const h = await run(...hashEmailsArgs(f("emails.csv"), f("hashed.csv"), "email_sha256"), "--json");
    expect(json(h.out)).toMatchObject({ header: "email_sha256", output: f("hashed.csv") });
    expect((await readFile(f("hashed.csv"), "utf8")).split("\n")[0]).toBe("email_sha256,amount");

    const c = await run(
      "check",
      f("hashed.csv"),
      "--contract",
      f("contract.json"),
      "--dataset",
      "purchases",
      "--json",
    );
    expect(c.code).toBe(0);
    expect(json(c.out)).toMatchObject({ ok: true, rows: 1, dataset: "purchases" });
  });

  it("a failure is JSON on stdout too, and names the path", async () => {
    const r = await run("contract", "digest", f("missing.json"), "--json");
    expect(r.code).toBe(2);
    expect(json(r.out)).toEqual({
      error: { code: "ERR_IO", message: `no such file or folder: ${f("missing.json")}` },
    });
    expect(r.err).toBe(`error ERR_IO: no such file or folder: ${f("missing.json")}\n`);
    const usage = await run("contract", "digest", "--bogus", "--json");
    expect(usage.code).toBe(2);
    expect(json(usage.out)).toMatchObject({ error: { code: "ERR_USAGE" } });
  });

  it("EEXIST names the file that is in the way", async () => {
    const r = await run("keygen", "--out", f("alice.key"));
    expect(r).toMatchObject({
      code: 2,
      err: `error ERR_IO: ${f("alice.key")} already exists; choose another name or remove it first\n`,
    });
    expect((await stat(f("alice.key"))).size).toBeGreaterThan(0);
  });
});

describe("messages name the thing", () => {
  const offline = () => [
    "--url",
    "http://127.0.0.1:9",
    "--contract",
    f("contract.json"),
    "--key",
    f("alice.key"),
    "--allow-any-measurement",
    "--state",
    f("state"),
  ];

  it("an unknown query, with the contract's queries", async () => {
    const r = await run("query", "buyers", ...offline());
    expect(r).toMatchObject({
      code: 2,
      err: "error ERR_USAGE: no query buyers in contract acme-news-q3 (queries: buyers-by-campaign)\n",
    });
  });

  it("a missing or mistyped parameter, with the query's parameters", async () => {
    const missing = await run("query", "buyers-by-campaign", ...offline());
    expect(missing.err).toBe(
      "error ERR_USAGE: query buyers-by-campaign: missing parameter min (its parameters: min (DOUBLE); give --param NAME=VALUE)\n",
    );
    const typed = await run("query", "buyers-by-campaign", "--param", "min=12,5", ...offline());
    expect(typed.err).toBe(
      "error ERR_USAGE: query buyers-by-campaign: parameter min (DOUBLE) must be a number, e.g. 12.5\n",
    );
  });

  it("an unknown dataset, with the contract's datasets; another party's dataset", async () => {
    const r = await run("grant", "--dataset", "sales", "--digest", "0".repeat(64), ...offline());
    expect(r.err).toBe(
      "error ERR_USAGE: no dataset sales in contract acme-news-q3 (datasets: purchases, impressions)\n",
    );
    const other = await run("grant", "--dataset", "impressions", "--digest", "0".repeat(64), ...offline());
    expect(other.err).toBe(
      "error ERR_USAGE: dataset impressions is owned by bob; party alice grants its own datasets only\n",
    );
  });

  it("upload checks the file first: a bad file is refused before any connection", async () => {
    await writeFile(f("raw.csv"), "email_sha256,amount\nalice@example.com,3\n");
    const r = await run("upload", f("raw.csv"), ...offline());
    expect(r.code).toBe(1);
    expect(r.err).toContain("line 2 (row 1), column email_sha256: an e-mail address in the clear");
    expect(r.err).toMatch(/error ERR_CHECK: .*raw\.csv does not match dataset purchases: 1 problem/);
    const asJson = await run("upload", f("raw.csv"), ...offline(), "--json");
    expect(JSON.parse(asJson.out).error).toMatchObject({
      code: "ERR_CHECK",
      report: { ok: false, counts: { IDENTITY: 1 }, problems: [{ line: 2, row: 1, column: "email_sha256" }] },
    });
    // Without the check it goes on, to the attestation that a dead host cannot answer.
    const unchecked = await run("upload", f("raw.csv"), "--no-check", ...offline());
    expect(unchecked.err).toMatch(/^error ERR_IO: host unreachable or timed out/);
  });
});
