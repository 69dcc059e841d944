/**
 * `npm run demo -- --console`: the demo's stack with each party's console instead of the scripted
 * flow, from dist/ as `npm run demo` runs it. No browser is started here (none is on the PATH the
 * demo gets), so it says where to open each console; Ctrl-C stops it and removes its folder.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { FilesView, SessionView } from "../../client/console/api-types.js";
import { buildConsoleAssets } from "../../scripts/build-console.js";

const ROOT = join(import.meta.dirname, "../..");

beforeAll(async () => {
  // What `npm run build` does after tsc (vitest's setup compiled dist/ already).
  await buildConsoleAssets(join(ROOT, "dist/client/console/assets"));
});

describe("npm run demo -- --console", () => {
  it("serves both parties' consoles over the demo's stack until Ctrl-C", async () => {
    const emptyPath = mkdtempSync(join(tmpdir(), "cleanroom-empty-path-"));
    const child = spawn(
      process.execPath,
      [join(ROOT, "dist/scripts/demo/run.js"), "--console", "--identities", "300"],
      {
        cwd: ROOT,
        // An empty PATH: no browser opener to find (the demo starts its processes by absolute path).
        env: { ...process.env, PATH: emptyPath },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.resume();
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    try {
      await expect.poll(() => /Ctrl-C stops/.test(out), { timeout: 60_000, interval: 200 }).toBe(true);
      const consoles = [
        ...out.matchAll(/^(advertiser|publisher) console: (http:\/\/127\.0\.0\.1:\d+)\/#token=([\w-]+)$/gm),
      ];
      expect(consoles.map((m) => m[1])).toEqual(["advertiser", "publisher"]);
      await expect
        .poll(() => out.match(/could not start xdg-open: open the address above in a browser/g)?.length)
        .toBe(2);
      for (const [, party, origin, token] of consoles) {
        const get = async <T>(path: string) =>
          (await (
            await fetch(`${origin}${path}`, { headers: { authorization: `Bearer ${token}` } })
          ).json()) as T;
        const session = await get<SessionView>("/api/session");
        expect(session.party.id).toBe(party);
        const files = await get<FilesView>("/api/files");
        expect(files.files.map((f) => f.name)).toEqual([
          party === "advertiser" ? "advertiser_purchases.csv" : "publisher_exposures.csv",
        ]);
      }
      const dir = /↔ enclave (\S+)\/enclave\.sock/.exec(out)![1]!;
      expect(existsSync(dir)).toBe(true);
      child.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(existsSync(dir)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(emptyPath, { recursive: true, force: true });
    }
  });
});
