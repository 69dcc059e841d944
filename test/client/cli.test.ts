import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { main } from "../../client/cli/program.js";
import { contractDigestHex } from "../../client/sdk/contract.js";
import { FakeHost, RESULT_CSV } from "./fake-host.js";
import { makeContract, makeParty, type TestParty } from "./setup.js";

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
  await writeFile(f("data.csv"), "email_sha256,amount\nabc,1\n");
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
      err: "error ERR_USAGE: give --measurement, --pcr or --allow-any-measurement\n",
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
    expect(r.err).toBe("error ERR_USAGE: query: unknown parameter\n");
  });

  it("I/O failures exit 2 as ERR_IO", async () => {
    const r = await cli("hash-ids", "--column", "e", "--kind", "email", f("missing.csv"), f("out.csv"));
    expect(r).toMatchObject({ code: 2, err: "error ERR_IO: ENOENT\n" });
  });

  it("a contract file that does not validate", async () => {
    await writeFile(f("bad-contract.json"), JSON.stringify({ ...host.contract, version: 2 }));
    const r = await cli("contract", "digest", f("bad-contract.json"));
    expect(r).toMatchObject({ code: 2, err: "error ERR_USAGE: contract file: version: unsupported value\n" });
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
    expect(up.code).toBe(0);
    const digest = up.out.trim();
    expect(host.blobs.has(digest)).toBe(true);
    expect((await cli("grant", "--dataset", "purchases", "--digest", digest, ...opts)).code).toBe(0);
    const q = await cli("query", "buyers-by-campaign", "--param", "min=5", "--out", f("result.csv"), ...opts);
    expect(q.code).toBe(0);
    expect(await readFile(f("result.csv"), "utf8")).toBe(RESULT_CSV);
    expect((await cli("audit", "verify", ...opts)).code).toBe(0);
    // Offline: the stored log and the keys and head remembered in the state directory.
    await writeFile(f("audit.json"), JSON.stringify({ entries: host.entries }));
    const offline = ["audit", "verify", "--file", f("audit.json"), "--url", host.url, "--state", f("state")];
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
