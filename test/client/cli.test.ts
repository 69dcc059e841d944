import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { main } from "../../client/cli/program.js";
import { contractDigestHex } from "../../client/sdk/contract.js";
import { verifyApprovals } from "../../protocol/contract/sign.js";
import type { Contract } from "../../protocol/contract/types.js";
import { useCaseContract } from "../../scripts/demo/usecases.js";
import { FakeHost, RESULT_CSV } from "./fake-host.js";
import { makeContract, makeParty, type TestParty } from "./setup.js";

/** `contract sign`'s y/N question, answered here instead of on a terminal. */
const prompt = vi.hoisted(() => ({ answer: "", asked: [] as string[] }));
vi.mock("node:readline/promises", () => ({
  createInterface: () => ({
    question: async (q: string) => {
      prompt.asked.push(q);
      return prompt.answer;
    },
    close: () => undefined,
  }),
}));

let platform: SimPlatform;
let alice: TestParty;
let bob: TestParty;
let host: FakeHost;
let dir: string;
const f = (name: string) => join(dir, name);

beforeAll(async () => {
  [platform, alice, bob] = await Promise.all([createSimPlatform(), makeParty("alice"), makeParty("bob")]);
  host = await FakeHost.start(platform, makeContract(alice, bob));
  dir = await mkdtemp(join(tmpdir(), "cleanroom-cli-"));
  await writeFile(f("contract.json"), JSON.stringify(host.contract));
  await writeFile(f("alice.key"), JSON.stringify(alice.file));
  await writeFile(f("roots.pem"), `${platform.amd.ark.toString("pem")}\n`);
  await writeFile(f("data.csv"), `email_sha256,amount\n${"ab".repeat(32)},1\n`);
});

afterAll(async () => {
  await host.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((s) => {
    err += String(s);
    return true;
  });
  try {
    return { code: await main(argv), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

const enclave = () => [
  "--url",
  host.url,
  "--contract",
  f("contract.json"),
  "--state",
  f("state"),
  "--measurement",
  toHex(platform.measurement),
];

describe("usage errors exit 2 with `error ERR_USAGE: ...`", () => {
  it.each([
    [["no-such-command"]],
    [["keygen"]],
    [["attest", "--url", "http://127.0.0.1:9"]],
    [["hash-ids", "--column", "email", "--kind", "fax", "in.csv", "out.csv"]],
    [["query", "q", "--url", "http://127.0.0.1:9", "--contract", "c.json", "--key", "k", "--format", "xml"]],
  ])("%j", async (argv) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error ERR_USAGE: /);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("attest without an expected measurement is a usage error, not a verdict", async () => {
    const r = await cli("attest", "--url", host.url, "--contract", f("contract.json"));
    expect(r).toMatchObject({
      code: 2,
      err: expect.stringMatching(
        /^error ERR_USAGE: no expected image: pass --measurement, --manifest or --pcr \(or --allow-any-measurement\), or set CLEANROOM_MANIFEST, or add "manifest" to cleanroom.json/,
      ),
    });
  });

  it("a query parameter the contract does not declare", async () => {
    const r = await cli(
      "query",
      "buyers-by-campaign",
      ...enclave(),
      "--key",
      f("alice.key"),
      "--param",
      "max=1",
    );
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      "error ERR_USAGE: query buyers-by-campaign: unknown parameter max (its parameters: min (DOUBLE))\n",
    );
  });

  it("I/O failures exit 2 as ERR_IO", async () => {
    const r = await cli("hash-ids", "--column", "e", "--kind", "email", f("missing.csv"), f("out.csv"));
    expect(r).toMatchObject({ code: 2, err: `error ERR_IO: no such file or folder: ${f("missing.csv")}\n` });
  });

  it("a contract file that does not validate", async () => {
    await writeFile(f("bad-contract.json"), JSON.stringify({ ...host.contract, version: 2 }));
    const r = await cli("contract", "digest", f("bad-contract.json"));
    expect(r).toMatchObject({
      code: 2,
      err: `error ERR_USAGE: contract file ${f("bad-contract.json")}: version: unsupported value\n`,
    });
  });

  it("--help exits 0", async () => {
    expect((await cli("--help")).code).toBe(0);
  });
});

describe("commands", () => {
  it("keygen writes a 0600 key file, refuses to overwrite it", async () => {
    const r = await cli("keygen", "--out", f("new.key"));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).ageRecipient).toMatch(/^age1/);
    expect((await stat(f("new.key"))).mode & 0o777).toBe(0o600);
    expect((await cli("keygen", "--out", f("new.key"))).code).toBe(2);
  });

  it("contract digest prints the digest", async () => {
    const r = await cli("contract", "digest", f("contract.json"));
    expect(r).toMatchObject({ code: 0, out: `${await contractDigestHex(host.contract)}\n` });
  });

  it("attest: exit 0 when verified, 1 when refused", async () => {
    const ok = await cli("attest", ...enclave(), "--trust-sim-root", f("roots.pem"));
    expect(ok.code).toBe(0);
    expect(ok.out).toContain("VERIFIED");
    const refused = await cli("attest", ...enclave());
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("✗");
    expect(refused.out).toContain("REFUSED");
  });

  it("upload, grant and query end to end; refusal exits 1", async () => {
    const opts = [...enclave(), "--trust-sim-root", f("roots.pem"), "--key", f("alice.key")];
    const up = await cli("upload", f("data.csv"), ...opts);
    expect(up.code, up.err).toBe(0);
    const digest = up.out.trim();
    expect(host.blobs.has(digest)).toBe(true);
    const granted = await cli("grant", "--dataset", "purchases", "--digest", digest, ...opts);
    expect(granted.code, granted.err).toBe(0);
    const q = await cli("query", "buyers-by-campaign", "--param", "min=5", "--out", f("result.csv"), ...opts);
    expect(q.code, q.err).toBe(0);
    expect(await readFile(f("result.csv"), "utf8")).toBe(RESULT_CSV);
    expect((await cli("audit", "verify", ...opts)).code).toBe(0);
    // Offline: the stored log and the keys and head remembered in the state directory.
    await writeFile(f("audit.json"), JSON.stringify({ entries: host.entries }));
    // Each instance's key is trusted through the evidence the log embeds, under this policy.
    const offline = [
      "audit",
      "verify",
      "--file",
      f("audit.json"),
      ...enclave(),
      "--trust-sim-root",
      f("roots.pem"),
    ];
    expect((await cli(...offline)).code).toBe(0);
    await writeFile(f("audit.json"), JSON.stringify({ entries: host.entries.slice(0, -1) }));
    expect(await cli(...offline)).toMatchObject({
      code: 1,
      err: expect.stringMatching(/^error ERR_AUDIT: /),
    });

    host.corruptResult = true;
    const bad = await cli("query", "buyers-by-campaign", "--param", "min=5", ...opts);
    host.corruptResult = false;
    expect(bad).toMatchObject({
      code: 1,
      err: "error ERR_RESULT_DIGEST: result does not match the signed digest\n",
    });
  });
});

describe("contract review and sign", () => {
  let demo: Contract;
  let signers: TestParty[];
  const tty = Object.getOwnPropertyDescriptor(process.stdin, "isTTY");
  const setTty = (value: boolean) =>
    Object.defineProperty(process.stdin, "isTTY", { value, configurable: true });

  beforeAll(async () => {
    signers = await Promise.all([makeParty("advertiser"), makeParty("publisher")]);
    demo = useCaseContract(
      signers.map((p) => ({
        id: p.id,
        name: p.id,
        signingKey: p.keys.signingKey,
        ageRecipient: p.keys.ageRecipient,
      })),
    );
    await writeFile(f("demo.json"), JSON.stringify(demo));
    const refused = structuredClone(demo);
    refused.queries[1]!.sql =
      "SELECT e.segment AS segment, count(*) AS publisher_users FROM publisher_exposures e WHERE e.user_id = 'x' GROUP BY e.segment";
    await writeFile(f("refused.json"), JSON.stringify(refused));
    for (const p of signers) await writeFile(f(`${p.id}.key`), JSON.stringify(p.file));
  });

  afterEach(() => {
    if (tty) Object.defineProperty(process.stdin, "isTTY", tty);
    else delete (process.stdin as { isTTY?: boolean }).isTTY;
    prompt.asked = [];
  });

  it("review prints the report and exits 0 when every query is admitted", async () => {
    const r = await cli("contract", "review", f("demo.json"));
    expect(r).toMatchObject({ code: 0, err: "" });
    expect(r.out).toMatch(/^CONTRACT REVIEW {2}acme-news-q3\n/);
    expect(r.out).toContain(`digest        ${await contractDigestHex(demo)}`);
    expect(r.out).toContain("QUERIES (4: 4 admitted, 0 refused)");
  });

  it("review --json prints the report object", async () => {
    const r = await cli("contract", "review", f("demo.json"), "--json");
    expect(r.code).toBe(0);
    const review = JSON.parse(r.out);
    expect(review).toMatchObject({
      contract: "acme-news-q3",
      digest: await contractDigestHex(demo),
      admitted: true,
    });
    expect(review.queries.map((q: { id: string; status: string }) => [q.id, q.status])).toEqual(
      demo.queries.map((q) => [q.id, "admitted"]),
    );
  });

  it("review exits 1 when a query is refused, and shows why", async () => {
    const r = await cli("contract", "review", f("refused.json"));
    expect(r.code).toBe(1);
    expect(r.out).toContain("[2] audience-overlap  aggregation rule  REFUSED");
    expect(r.out).toContain("identity column e.user_id may appear only in join equalities");
    expect((await cli("contract", "review", f("refused.json"), "--json")).code).toBe(1);
  });

  it("sign without --yes and no terminal is a usage error: nothing is signed", async () => {
    setTty(false);
    const r = await cli("contract", "sign", f("demo.json"), "--key", f("advertiser.key"));
    expect(r).toMatchObject({
      code: 2,
      out: "",
      err: `error ERR_USAGE: contract sign: no terminal to confirm on; read \`cleanroom contract review ${f("demo.json")}\`, then pass --yes\n`,
    });
    expect(prompt.asked).toEqual([]);
  });

  it("sign --yes signs without asking; both approvals verify", async () => {
    setTty(false);
    const approvals: string[] = [];
    for (const p of signers) {
      const r = await cli("contract", "sign", f("demo.json"), "--key", f(`${p.id}.key`), "--yes");
      expect(r.code).toBe(0);
      expect(r.err).toContain(
        `signing contract acme-news-q3 (digest ${await contractDigestHex(demo)}) as ${p.id}`,
      );
      approvals.push(r.out.trim());
    }
    expect(prompt.asked).toEqual([]);
    await expect(verifyApprovals(demo, approvals)).resolves.toMatchObject({ approvals: [{}, {}] });
  });

  it("on a terminal, sign shows the review and signs only on y", async () => {
    setTty(true);
    prompt.answer = "y";
    const yes = await cli("contract", "sign", f("demo.json"), "--key", f("advertiser.key"));
    expect(yes.code).toBe(0);
    expect(yes.err).toContain("CONTRACT REVIEW  acme-news-q3");
    expect(prompt.asked).toEqual([
      `Sign contract acme-news-q3 (digest ${await contractDigestHex(demo)}) as advertiser? [y/N] `,
    ]);
    expect(yes.out).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);

    prompt.answer = "";
    const no = await cli("contract", "sign", f("demo.json"), "--key", f("advertiser.key"));
    expect(no).toMatchObject({ code: 1, out: "" });
    expect(no.err).toMatch(/not signed\n$/);
  });

  it("sign refuses a contract with a refused query, even with --yes", async () => {
    const r = await cli("contract", "sign", f("refused.json"), "--key", f("advertiser.key"), "--yes");
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/^error ERR_CONTRACT_QUERY: query audience-overlap: identity column e\.user_id/);
  });
});
