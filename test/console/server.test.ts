/**
 * The console's local server without a browser: who it answers (token, Host, Origin), what it
 * serves (the built page only, under a strict CSP), what it accepts (JSON bodies, files of its
 * data folder by name, this party's own datasets, approvals that verify), and that its answers
 * never carry the party's keys.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContractView, FilesView, JobView } from "../../client/console/api-types.js";
import {
  CONTENT_SECURITY_POLICY,
  type ConsoleServer,
  startConsoleServer,
} from "../../client/console/server.js";
import { ConsoleSession } from "../../client/console/session.js";
import {
  approveContract,
  CleanroomClient,
  decryptAgeNode,
  generatePartyKeys,
  HostClient,
  loadPartyKeys,
  MemoryStateStore,
  type PartyKeyFile,
  type PartyKeys,
} from "../../client/node/index.js";
import type { Contract } from "../../protocol/contract/types.js";
import { buildConsoleAssets } from "../../scripts/build-console.js";
import { useCaseContract, useCaseRows } from "../../scripts/demo/usecases.js";

let work: string;
let server: ConsoleServer;
let contract: Contract;
const files = {} as Record<"advertiser" | "publisher" | "stranger", PartyKeyFile>;
const keys = {} as Record<"advertiser" | "publisher" | "stranger", PartyKeys>;

function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${server.origin}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${server.token}`, ...(init.headers as Record<string, string>) },
  });
}

async function postJson(path: string, body: unknown): Promise<Response> {
  return api(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function errorCode(r: Response): Promise<string> {
  return ((await r.json()) as { error: { code: string } }).error.code;
}

/** A raw request with headers fetch will not set (Host). */
function raw(path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.origin}${path}`, { headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "cleanroom-console-server-"));
  await buildConsoleAssets(join(work, "assets"));
  for (const id of ["advertiser", "publisher", "stranger"] as const) {
    files[id] = await generatePartyKeys();
    keys[id] = await loadPartyKeys(files[id]);
  }
  contract = useCaseContract(
    (["advertiser", "publisher"] as const).map((id) => ({
      id,
      name: id,
      signingKey: keys[id].signingKey,
      ageRecipient: keys[id].ageRecipient,
    })),
  );
  const data = join(work, "data");
  mkdirSync(data);
  writeFileSync(join(data, "purchases.csv"), [...useCaseRows("purchases", { identities: 300 })].join(""));
  writeFileSync(
    join(data, "wrong.csv"),
    "user_id,purchase_ts,amount,category\nnot-a-hash,yesterday,12,shoes\n",
  );
  writeFileSync(join(work, "secret.txt"), "outside the data folder\n");
  const client = await CleanroomClient.open({
    // Nothing in these tests reaches a clean room: this port has no host.
    host: new HostClient("http://127.0.0.1:9"),
    store: new MemoryStateStore(),
    policy: { allowAnyMeasurement: true },
    contract,
    keys: keys.advertiser,
    decrypt: decryptAgeNode,
  });
  const session = new ConsoleSession({
    client,
    approvalsDir: join(work, "approvals"),
    dataDir: data,
    version: "test",
  });
  server = await startConsoleServer({ session, assetsDir: join(work, "assets") });
});

afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("what the console serves", () => {
  it("the page and its two files, under a CSP with no inline code and no other origin", async () => {
    const page = await fetch(`${server.origin}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe|https?:|\*|data:.*script/);
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    // No inline script or style in the page: everything comes from the two files.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
    expect(html).toContain('src="/assets/app.js"');
    const js = await fetch(`${server.origin}/assets/app.js`);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    const bundle = await js.text();
    // Bundled, not fetched: no module import of another origin.
    expect(bundle).not.toMatch(/import\s*\(?\s*["']https?:/);
    expect((await fetch(`${server.origin}/assets/app.css`)).status).toBe(200);
  });

  it("nothing else: no other file, no path out of the page's folder", async () => {
    for (const path of [
      "/assets/app.js.LEGAL.txt",
      "/assets/../../package.json",
      "/assets/%2e%2e/index.html",
      "/package.json",
      "/secret.txt",
    ]) {
      const r = await fetch(`${server.origin}${path}`);
      expect(r.status, path).toBe(404);
    }
    expect((await fetch(`${server.origin}/`, { method: "POST" })).status).toBe(404);
  });
});

describe("who the console answers", () => {
  it("API calls carry this launch's token as a bearer header, and nothing else will do", async () => {
    const url = `${server.origin}/api/session`;
    expect((await fetch(url)).status).toBe(401);
    expect(await errorCode(await fetch(url))).toBe("ERR_CONSOLE_TOKEN");
    expect((await fetch(url, { headers: { authorization: `Bearer ${server.token}x` } })).status).toBe(401);
    expect((await fetch(`${url}?token=${server.token}`)).status).toBe(401);
    expect((await fetch(url, { headers: { cookie: `token=${server.token}` } })).status).toBe(401);
    expect((await api("/api/session")).status).toBe(200);
    // The token is in the fragment of the printed address: never sent in a request line.
    expect(server.url).toBe(`${server.origin}/#token=${server.token}`);
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("refuses another Host (a DNS-rebound name) and another Origin, even with the token", async () => {
    const auth = { authorization: `Bearer ${server.token}` };
    expect(await raw("/api/session", { ...auth, host: "evil.example" })).toBe(403);
    expect(await raw("/api/session", { ...auth, host: `evil.example:${server.port}` })).toBe(403);
    expect(await raw("/", { host: "evil.example" })).toBe(403);
    expect(await raw("/api/session", { ...auth, host: `localhost:${server.port}` })).toBe(200);
    const r = await api("/api/session", { headers: { origin: "http://127.0.0.1:1" } });
    expect(r.status).toBe(403);
    expect(await errorCode(r)).toBe("ERR_CONSOLE_ORIGIN");
    expect((await api("/api/session", { headers: { origin: server.origin } })).status).toBe(200);
  });

  it("takes JSON bodies only, small ones, and names what it does not know", async () => {
    const form = await api("/api/check", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "dataset=advertiser_purchases&file=purchases.csv",
    });
    expect(form.status).toBe(400);
    expect(await errorCode(form)).toBe("ERR_CONSOLE_REQUEST");
    expect((await postJson("/api/check", "x".repeat(70_000))).status).toBe(400);
    expect((await postJson("/api/check", [1, 2])).status).toBe(400);
    const unknown = await api("/api/keys");
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe("ERR_CONSOLE_NOT_FOUND");
  });
});

describe("what the console does with what the page sends", () => {
  it("lists the data folder's files and reads no path but their names", async () => {
    const list = (await (await api("/api/files")).json()) as FilesView;
    expect(list.files.map((f) => f.name)).toEqual(["purchases.csv", "wrong.csv"]);
    for (const file of ["../secret.txt", "/etc/passwd", "..", ".hidden", "sub/purchases.csv", ""]) {
      const r = await postJson("/api/check", { dataset: "advertiser_purchases", file });
      expect(r.status, file).toBeGreaterThanOrEqual(400);
      expect(["ERR_CONSOLE_REQUEST", "ERR_CONSOLE_NOT_FOUND"], file).toContain(await errorCode(r));
    }
  });

  it("checks a file locally: a good one passes, a wrong one is reported by row and column", async () => {
    const good = (await (
      await postJson("/api/check", { dataset: "advertiser_purchases", file: "purchases.csv" })
    ).json()) as {
      ok: boolean;
      rows: number;
    };
    expect(good.ok).toBe(true);
    expect(good.rows).toBeGreaterThan(100);
    const bad = (await (
      await postJson("/api/check", { dataset: "advertiser_purchases", file: "wrong.csv" })
    ).json()) as {
      ok: boolean;
      problems: { row?: number; column?: string }[];
    };
    expect(bad.ok).toBe(false);
    expect(bad.problems.map((p) => [p.row, p.column])).toEqual(
      expect.arrayContaining([
        [1, "user_id"],
        [1, "purchase_ts"],
      ]),
    );
  });

  it("acts on this party's own datasets only", async () => {
    for (const path of ["/api/check", "/api/uploads", "/api/grants"]) {
      const r = await postJson(path, { dataset: "publisher_exposures", file: "purchases.csv" });
      expect(r.status, path).toBe(400);
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain(
        "owned by publisher",
      );
    }
  });

  it("signs only the digest the user confirmed, and keeps approvals that verify", async () => {
    const wrong = await postJson("/api/contract/sign", { digest: "0".repeat(64) });
    expect(wrong.status).toBe(400);
    const view = (await (await api("/api/contract")).json()) as ContractView;
    expect(view.approvals.map((a) => a.status)).toEqual(["missing", "missing"]);
    const signed = (await (
      await postJson("/api/contract/sign", { digest: view.digest })
    ).json()) as ContractView;
    expect(signed.signedByMe).toBe(true);
    expect(signed.approvals.map((a) => [a.party, a.status])).toEqual([
      ["advertiser", "signed"],
      ["publisher", "missing"],
    ]);
    // Another party's approval, signed with a key the contract does not name, is refused.
    const forged = await approveContract(
      { ...contract, parties: [{ ...contract.parties[1]!, signingKey: keys.stranger.signingKey }] },
      keys.stranger,
    );
    const refused = await postJson("/api/contract/approvals", { approval: forged });
    expect(refused.status).toBe(400);
    // And one dropped in the folder by hand is ignored.
    writeFileSync(join(work, "approvals", "publisher.approval.jws"), forged);
    const still = (await (await api("/api/contract")).json()) as ContractView;
    expect(still.approvals[1]!.status).toBe("missing");
    const real = await approveContract(contract, keys.publisher);
    const added = (await (
      await postJson("/api/contract/approvals", { approval: real })
    ).json()) as ContractView;
    expect(added.approvals.map((a) => a.status)).toEqual(["signed", "signed"]);
    expect(readFileSync(join(work, "approvals", "publisher.approval.jws"), "utf8").trim()).toBe(real);
    expect(readdirSync(join(work, "approvals")).sort()).toEqual([
      "advertiser.approval.jws",
      "publisher.approval.jws",
    ]);
  });

  it("refuses to run a query before the enclave verified, naming parameters it checks first", async () => {
    const unknown = await postJson("/api/runs", { queryId: "nope", params: {} });
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toContain(
      "queries: closed-loop",
    );
    const missing = await postJson("/api/runs", { queryId: "closed-loop", params: {} });
    expect(((await missing.json()) as { error: { message: string } }).error.message).toContain(
      "missing parameter campaign",
    );
    const unverified = await postJson("/api/runs", {
      queryId: "closed-loop",
      params: { campaign: "spring24" },
    });
    expect(unverified.status).toBe(422);
    expect(await errorCode(unverified)).toBe("ERR_ATTESTATION_REFUSED");
    const notJob = await api(`/api/jobs/${"a".repeat(24)}`);
    expect(notJob.status).toBe(404);
  });

  it("never sends the page a key", async () => {
    const secrets = [files.advertiser.signingKey.d!, files.advertiser.ageIdentity];
    for (const path of [
      "/api/session",
      "/api/contract",
      "/api/files",
      "/api/attestation",
      "/api/queries",
      "/api/data",
      "/api/audit",
    ]) {
      const text = await (await api(path)).text();
      for (const s of secrets) expect(text.includes(s), path).toBe(false);
    }
  });
});

describe("jobs", () => {
  it("only an upload can be cancelled; a grant or run acts once sent", async () => {
    const { Jobs } = await import("../../client/console/jobs.js");
    const jobs = new Jobs();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const grant = jobs.start("grant", "grant x", async () => {
      await gate;
      return 1;
    });
    await expect(jobs.cancel(grant.id)).rejects.toMatchObject({ code: "ERR_CONSOLE_REQUEST" });
    release();
    const upload = jobs.start(
      "upload",
      "upload y",
      async (ctx) => {
        for (let i = 0; ; i++) {
          ctx.report({ phase: "upload", done: i, total: 1e9 });
          await new Promise((r) => setTimeout(r, 5));
        }
      },
      { cancellable: true },
    );
    await new Promise((r) => setTimeout(r, 30));
    const cancelled: JobView = await jobs.cancel(upload.id);
    expect(cancelled.state).toBe("cancelled");
    expect(cancelled.error?.code).toBe("ERR_CANCELLED");
    await expect.poll(() => jobs.get(grant.id).state).toBe("done");
  });
});
