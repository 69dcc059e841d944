/**
 * `cleanroom console` as installed: the built CLI (dist/) started with a profile, serving the
 * built page from the package on 127.0.0.1, stopping cleanly on SIGTERM.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionView } from "../../client/console/api-types.js";
import { generatePartyKeys, loadPartyKeys, writeNewKeyFile } from "../../client/node/index.js";
import { buildConsoleAssets } from "../../scripts/build-console.js";
import { useCaseContract } from "../../scripts/demo/usecases.js";

const ROOT = join(import.meta.dirname, "../..");
const CLI = join(ROOT, "dist/client/cli/main.js");
let work: string;

/** Starts the CLI; resolves with the child and its first complete JSON document on stdout. */
function start(args: string[]): Promise<{ child: ChildProcess; doc: Record<string, unknown> }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      try {
        resolve({ child, doc: JSON.parse(out) as Record<string, unknown> });
      } catch {
        // not complete yet
      }
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
}

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: work, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, stderr })));
}

beforeAll(async () => {
  // What `npm run build` does after tsc (vitest's setup compiled dist/ already).
  await buildConsoleAssets(join(ROOT, "dist/client/console/assets"));
  work = mkdtempSync(join(tmpdir(), "cleanroom-console-cli-"));
  const adv = await loadPartyKeys(await writeNewKeyFile(join(work, "advertiser.key.json")));
  const pub = await loadPartyKeys(await generatePartyKeys());
  const contract = useCaseContract([
    { id: "advertiser", name: "Acme", signingKey: adv.signingKey, ageRecipient: adv.ageRecipient },
    { id: "publisher", name: "News", signingKey: pub.signingKey, ageRecipient: pub.ageRecipient },
  ]);
  writeFileSync(join(work, "contract.json"), JSON.stringify(contract));
  writeFileSync(
    join(work, "cleanroom.json"),
    JSON.stringify({
      url: "http://127.0.0.1:9",
      allowAnyMeasurement: true,
      contract: "contract.json",
      state: "state",
      profiles: { advertiser: { key: "advertiser.key.json", party: "advertiser" } },
    }),
  );
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("cleanroom console", () => {
  it("serves the party's console from a profile, then stops on SIGTERM", async () => {
    const { child, doc } = await start(["console", "--profile", "advertiser", "--json"]);
    try {
      const url = new URL(String(doc["url"]));
      expect(url.hostname).toBe("127.0.0.1");
      expect(doc["party"]).toBe("advertiser");
      const token = /^#token=([A-Za-z0-9_-]+)$/.exec(url.hash)![1]!;
      const page = await fetch(url.origin);
      expect(await page.text()).toContain('<script type="module" src="/assets/app.js"></script>');
      expect((await fetch(`${url.origin}/assets/app.js`)).status).toBe(200);
      const session = (await (
        await fetch(`${url.origin}/api/session`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as SessionView;
      expect(session.party.id).toBe("advertiser");
      expect(session.contract.file).toBe(join(work, "contract.json"));
      expect(session.dataDir).toBe(work);
      expect(session.host).toBe("http://127.0.0.1:9");
    } finally {
      const exited = new Promise<number | null>((r) => child.once("exit", r));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });

  it("refuses a port that is not one, and a key of no party of the contract", async () => {
    const port = await run(["console", "--profile", "advertiser", "--port", "70000"]);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/^error ERR_USAGE: --port/m);
    await writeNewKeyFile(join(work, "stranger.key.json"));
    const key = await run(["console", "--profile", "advertiser", "--key", "stranger.key.json"]);
    expect(key.code).toBe(2);
    expect(key.stderr).toMatch(/is not the key of any party of contract acme-news-q3/);
  });
});
