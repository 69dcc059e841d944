/**
 * Profiles: `cleanroom.json` found upward from the current folder (or --config), profiles over
 * the top level, environment over the file, flags over everything; `cleanroom init` writes it
 * without asking when given flags; unknown keys and profiles are refused with the known ones.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findConfigUpward, readConfigFile } from "../../client/cli/config.js";
import { contractDigestHex } from "../../client/sdk/contract.js";
import type { Contract } from "../../protocol/contract/types.js";
import { makeContract, makeParty, type TestParty } from "../client/setup.js";
import { cli, noCleanroomEnv, withEnv } from "./main-cli.js";

let dir: string;
let alice: TestParty;
let bob: TestParty;
/** Four contracts that differ only in their id, so each has its own digest. */
const contracts: Record<string, Contract> = {};
const digests: Record<string, string> = {};
const f = (...p: string[]) => join(dir, ...p);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cleanroom-profile-"));
  [alice, bob] = await Promise.all([makeParty("alice"), makeParty("bob")]);
  await mkdir(f("project", "a", "b"), { recursive: true });
  for (const name of ["top", "prof", "env", "flag"]) {
    contracts[name] = { ...makeContract(alice, bob), id: `contract-${name}` };
    digests[name] = await contractDigestHex(contracts[name]!);
    await writeFile(f("project", `${name}.json`), JSON.stringify(contracts[name]));
  }
  await writeFile(f("project", "alice.key"), JSON.stringify(alice.file));
  await writeFile(
    f("project", "cleanroom.json"),
    JSON.stringify({
      url: "http://127.0.0.1:9",
      contract: "top.json",
      profiles: { p: { contract: "prof.json", key: "alice.key" } },
    }),
  );
});

afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs the CLI from `cwd` with no CLEANROOM_* variable but `env`. */
async function from(cwd: string, env: Record<string, string>, ...argv: string[]) {
  const before = process.cwd();
  process.chdir(cwd);
  try {
    return await withEnv({ ...noCleanroomEnv(), ...env }, () => cli(...argv));
  } finally {
    process.chdir(before);
  }
}

describe("finding and reading cleanroom.json", () => {
  it("is found in the current folder or the nearest one above it", () => {
    expect(findConfigUpward(f("project", "a", "b"))).toBe(f("project", "cleanroom.json"));
    expect(findConfigUpward(f("project"))).toBe(f("project", "cleanroom.json"));
    expect(findConfigUpward(dir)).toBeUndefined();
  });

  it("resolves paths from the file's folder and refuses unknown keys, naming the known ones", async () => {
    const c = readConfigFile(f("project", "cleanroom.json"));
    expect(c.settings.contract).toBe(f("project", "top.json"));
    expect(c.profiles.p!.key).toBe(f("project", "alice.key"));
    await writeFile(f("bad.json"), JSON.stringify({ url: "x", measurment: "ab" }));
    expect(() => readConfigFile(f("bad.json"))).toThrow(
      /bad\.json: unknown setting "measurment" \(settings: url, state, timeout, measurement, manifest,/,
    );
    await writeFile(f("bad2.json"), JSON.stringify({ trustSimRoot: [1] }));
    expect(() => readConfigFile(f("bad2.json"))).toThrow(
      /"trustSimRoot" must be a string or a list of strings/,
    );
  });
});

describe("precedence: flag > environment > profile > top level", () => {
  const digestOut = async (cwd: string, env: Record<string, string>, ...argv: string[]) => {
    const r = await from(cwd, env, "contract", "digest", ...argv);
    expect(r.code, r.err).toBe(0);
    return r.out.trim();
  };

  it("each level overrides the ones below it, from a folder below the file", async () => {
    const deep = f("project", "a", "b");
    expect(await digestOut(deep, {})).toBe(digests.top);
    expect(await digestOut(deep, {}, "--profile", "p")).toBe(digests.prof);
    expect(await digestOut(deep, { CLEANROOM_PROFILE: "p" })).toBe(digests.prof);
    expect(await digestOut(deep, { CLEANROOM_CONTRACT: f("project", "env.json") }, "--profile", "p")).toBe(
      digests.env,
    );
    expect(
      await digestOut(
        deep,
        { CLEANROOM_CONTRACT: f("project", "env.json") },
        "--profile",
        "p",
        "--contract",
        f("project", "flag.json"),
      ),
    ).toBe(digests.flag);
    // The argument is the flag's positional form.
    expect(await digestOut(deep, {}, f("project", "flag.json"))).toBe(digests.flag);
  });

  it("--config names another file; no file at all leaves only flags and environment", async () => {
    await writeFile(f("other.json"), JSON.stringify({ contract: "project/env.json" }));
    expect(await digestOut(f("project"), {}, "--config", f("other.json"))).toBe(digests.env);
    const none = await from(dir, {}, "contract", "digest");
    expect(none).toMatchObject({
      code: 2,
      err: 'error ERR_USAGE: missing --contract: pass --contract, set CLEANROOM_CONTRACT, or add "contract" to cleanroom.json (cleanroom init writes one)\n',
    });
  });

  it("an unknown profile is refused with the file's profiles; --profile needs a file", async () => {
    const r = await from(f("project"), {}, "contract", "digest", "--profile", "q");
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `error ERR_USAGE: no profile q in ${f("project", "cleanroom.json")} (profiles: p; add one with cleanroom init --profile q)\n`,
    );
    const none = await from(dir, {}, "contract", "digest", "--profile", "p");
    expect(none.err).toMatch(
      /^error ERR_USAGE: --profile p: no cleanroom\.json in .* or any folder above it/,
    );
  });

  it("a missing setting names the file that was read", async () => {
    const r = await from(f("project"), {}, "grant", "--dataset", "purchases");
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `error ERR_USAGE: missing --key: pass --key, set CLEANROOM_KEY, or add "key" to ${f("project", "cleanroom.json")} (cleanroom init writes one)\n`,
    );
  });

  it("--party is checked against the key", async () => {
    const r = await from(f("project"), {}, "grant", "--profile", "p", "--party", "bob");
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `error ERR_USAGE: key file ${f("project", "alice.key")} belongs to party alice, not to bob (--party)\n`,
    );
  });
});

describe("cleanroom init", () => {
  it("writes the settings and profiles given, asking nothing, paths relative to the file", async () => {
    const home = f("init");
    await mkdir(f("init", "sim"), { recursive: true });
    const r = await from(
      home,
      { CLEANROOM_URL: "http://127.0.0.1:7000" },
      "init",
      "--sim-dir",
      "sim",
      "--contract",
      "contract.json",
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe("");
    const p = await from(
      home,
      {},
      "init",
      "--profile",
      "alice",
      "--key",
      f("project", "alice.key"),
      "--json",
    );
    expect(p.code, p.err).toBe(0);
    expect(JSON.parse(p.out)).toMatchObject({ profile: "alice" });
    const doc = JSON.parse(await readFile(f("init", "cleanroom.json"), "utf8"));
    expect(doc).toEqual({
      url: "http://127.0.0.1:7000",
      trustSimRoot: ["sim/sim-roots.pem"],
      manifest: "sim/expected.json",
      contract: "contract.json",
      profiles: { alice: { key: relative(home, f("project", "alice.key")) } },
    });
    // A second init keeps what is there unless --force; a profile too.
    const again = await from(home, {}, "init", "--url", "http://127.0.0.1:7001");
    expect(again).toMatchObject({ code: 2 });
    expect(again.err).toMatch(/already sets url; pass --force to replace them/);
    expect((await from(home, {}, "init", "--profile", "alice", "--key", "k")).err).toMatch(
      /already has a profile alice; pass --force/,
    );
    expect((await from(home, {}, "init", "--url", "http://127.0.0.1:7001", "--force")).code).toBe(0);
    expect(JSON.parse(await readFile(f("init", "cleanroom.json"), "utf8")).url).toBe("http://127.0.0.1:7001");
  });

  it("without --url or CLEANROOM_URL, writes the local stack's URL", async () => {
    await mkdir(f("local"));
    expect((await from(f("local"), {}, "init", "--contract", "c.json")).code).toBe(0);
    expect(JSON.parse(await readFile(f("local", "cleanroom.json"), "utf8")).url).toBe(
      "http://127.0.0.1:8080",
    );
  });
});
