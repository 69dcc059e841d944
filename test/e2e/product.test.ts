/**
 * The product end to end over real sockets: two parties through the partner SDK, the untrusted
 * host and the simulated enclave. Results must equal the aggregates computed directly on the
 * plaintext with k-suppression (the DP query: within its noise bound); the host must never see
 * plaintext; a tampering host is caught.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attest, grant, HostClient, uploadFile } from "../../client/node/index.js";
import {
  DEMO_RUNS,
  type FlowResult,
  runPartnerFlow,
  simPolicy,
  startCollaboration,
} from "../../scripts/demo/flow.js";
import { hashedEmail, useCaseRows } from "../../scripts/demo/usecases.js";
import * as truth from "../enclave/truth.js";
import { startTestStack, type TestStack } from "./stack.js";

const IDENTITIES = 2000;
const tag = randomBytes(8).toString("hex");
const CANARY = {
  advertiserValue: `CANARY-adv-${tag}`,
  publisherValue: `CANARY-pub-${tag}`,
  advertiserId: hashedEmail(10_000_000 + Number.parseInt(tag.slice(0, 6), 16)),
  publisherId: hashedEmail(20_000_000 + Number.parseInt(tag.slice(6, 12), 16)),
};

function withCanaries(which: "purchases" | "exposures"): string[] {
  const rows = [...useCaseRows(which, { identities: IDENTITIES })];
  rows.push(
    which === "purchases"
      ? `${CANARY.advertiserId},2024-04-10 12:00:00,99.99,${CANARY.advertiserValue}\n`
      : `${CANARY.publisherId},2024-04-05 10:00:00,spring24,ctv,exposed,${CANARY.publisherValue},18-34\n`,
  );
  return rows;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

let stack: TestStack;
let flow: FlowResult;

beforeAll(async () => {
  // A short release quantum: the mechanism runs end to end without slowing the suite.
  stack = await startTestStack({ releaseQuantumMs: 50 });
  flow = await runPartnerFlow({
    url: stack.url,
    simDir: stack.simDir,
    workDir: stack.dir,
    identities: IDENTITIES,
    data: withCanaries,
  });
});
afterAll(() => stack.stop());

describe("two parties, full flow", () => {
  it("loads both datasets through attested grants", () => {
    expect(flow.simulated).toBe(true);
    expect(flow.uploads.map((u) => u.dataset).sort()).toEqual([
      "advertiser_purchases",
      "publisher_exposures",
    ]);
    for (const u of flow.uploads) expect(u.rows).toBeGreaterThan(IDENTITIES / 2);
  });

  it("returns exactly the plaintext aggregates with groups under k suppressed, and the DP one within its noise", () => {
    const plain = truth.parse({
      purchases: readFileSync(join(stack.dir, "advertiser_purchases.csv"), "utf8"),
      exposures: readFileSync(join(stack.dir, "publisher_exposures.csv"), "utf8"),
    });
    const expected: Record<string, truth.Expected> = {
      "closed-loop": truth.closedLoop(plain, "spring24"),
      "audience-overlap": truth.audienceOverlap(plain),
      "last-touch": truth.lastTouch(plain, "2024-04-01", "2024-05-01"),
      "audience-insight": truth.audienceInsight(plain, "shoes"),
    };
    expect(flow.results.map((r) => r.run.queryId).sort()).toEqual(Object.keys(expected).sort());
    for (const r of flow.results) {
      const e = expected[r.run.queryId]!;
      const q = flow.contract.queries.find((x) => x.id === r.run.queryId)!;
      if (q.policy.kind === "custom") {
        // Noised: every declared group, each value near the exact one, epsilon charged.
        truth.expectNoisy(q, r.columns, r.rows as (string | number)[][], e);
        expect(r.epsilon, r.run.queryId).toBe(q.policy.dp!.epsilon);
      } else {
        expect(r.rows, r.run.queryId).toEqual(e.rows);
        expect(r.epsilon, r.run.queryId).toBe(0);
      }
      // The groups held back are counted nowhere a party sees.
      expect(r, r.run.queryId).not.toHaveProperty("groupsSuppressed");
    }
    expect(flow.contract.queries.find((x) => x.id === "last-touch")!.policy.kind).toBe("custom");
    // The canary segment is a group of one person: the plaintext has it, the released rows do not.
    expect(expected["audience-overlap"]!.suppressed).toBeGreaterThanOrEqual(1);
    const overlap = flow.results.find((r) => r.run.queryId === "audience-overlap")!;
    expect(overlap.rows.length).toBeGreaterThan(0);
    expect(overlap.rows.some((row) => row[0] === CANARY.publisherValue)).toBe(false);
  });

  it("leaves an audit log both parties verified: contract, grants, loads, runs", () => {
    expect(flow.auditEntries).toBeGreaterThanOrEqual(1 + 1 + 2 + 2 + 4);
  });
});

describe("the host sees no plaintext", () => {
  it("finds no canary in any byte the host received, sent, stored or logged", () => {
    const haystacks: [string, Buffer][] = [
      ["wire", Buffer.concat(stack.wire)],
      ["logs", Buffer.from(stack.logs.join(""))],
      ...filesUnder(stack.storeDir).map((f) => [f, readFileSync(f)] as [string, Buffer]),
    ];
    expect(Buffer.concat(stack.wire).length).toBeGreaterThan(100_000);
    expect(stack.logs.length).toBeGreaterThan(10);
    for (const [name, bytes] of haystacks) {
      for (const canary of Object.values(CANARY)) {
        expect(bytes.includes(canary), `${canary} in ${name}`).toBe(false);
      }
    }
  });
});

describe("what the host stores of query runs", () => {
  const payload = (jws: string) =>
    JSON.parse(Buffer.from(jws.split(".")[1]!, "base64url").toString("utf8")) as {
      body?: unknown;
      kind?: string;
      data?: Record<string, unknown>;
    };

  it("signed answers hold a digest of each stored ciphertext and a receipt per party, no counts", async () => {
    const metas = filesUnder(stack.storeDir).filter((f) => f.endsWith("meta.json"));
    expect(metas).toHaveLength(DEMO_RUNS.length);
    for (const meta of metas) {
      const { response, recipients } = JSON.parse(readFileSync(meta, "utf8")) as {
        response: string;
        recipients: string[];
      };
      const body = payload(response).body as Record<string, unknown>;
      expect(body).not.toHaveProperty("rows");
      expect(body).not.toHaveProperty("groupsSuppressed");
      expect(body).not.toHaveProperty("resultDigest");
      const digests = body.resultDigests as Record<string, string>;
      expect(Object.keys(digests).sort()).toEqual(recipients);
      for (const p of recipients) {
        const file = join(meta, "..", `${p}.age`);
        expect(digests[p]).toBe(createHash("sha256").update(readFileSync(file)).digest("hex"));
      }
      expect(Object.keys(body.receipts as object).length).toBeGreaterThanOrEqual(recipients.length);
    }
  });

  it("query-run audit entries carry no counts", () => {
    const lines = readFileSync(join(stack.storeDir, "audit.jsonl"), "utf8").trim().split("\n");
    const runs = lines
      .map((l) => payload((JSON.parse(l) as { jws: string }).jws))
      .filter((e) => e.kind === "query-run");
    expect(runs).toHaveLength(DEMO_RUNS.length);
    for (const r of runs)
      expect(Object.keys(r.data!).sort()).toEqual(
        ["epsilon", "paramsDigest", "query", "requester", "resultDigests"]
          .concat(r.data!.debits ? ["debits"] : [])
          // a guarded run that released rows names its sealed history, an opaque digest
          .concat(r.data!.guard ? ["guard"] : [])
          .concat(r.data!.versions ? ["versions"] : [])
          .sort(),
      );
  });

  it("every other recipient fetched its own copy, checked against the signed answer", () => {
    for (const r of flow.results) {
      const q = flow.contract.queries.find((x) => x.id === r.run.queryId)!;
      expect(r.recipientsVerified.sort(), r.run.queryId).toEqual([...q.recipients].sort());
    }
  });
});

describe("a tampering host is caught", () => {
  it("replaying a captured request is refused by the enclave", async () => {
    const wire = Buffer.concat(stack.wire).toString("latin1");
    const m = /POST \/api\/v1\/queries[\s\S]*?\r\n\r\n(\{"jwe":"[^"]+"\})/.exec(wire);
    expect(m).not.toBeNull();
    const res = await fetch(`${stack.url}/api/v1/queries`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: m![1],
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_REPLAY");
  });

  it("old evidence served for a new nonce is refused by the client", async () => {
    const nonce = "11".repeat(32);
    const old = await (await fetch(`${stack.url}/api/v1/evidence?nonce=${nonce}`)).json();
    const { createServer } = await import("node:http");
    const stale = createServer((_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(old));
    });
    await new Promise<void>((r) => stale.listen(0, "127.0.0.1", () => r()));
    const url = `http://127.0.0.1:${(stale.address() as { port: number }).port}`;
    try {
      await expect(
        attest(new HostClient(url), { policy: simPolicy(stack.simDir), contractDigest: flow.contractDigest }),
      ).rejects.toMatchObject({ code: "ERR_ATTESTATION_REFUSED" });
    } finally {
      stale.close();
    }
  });

  it("a changed ciphertext byte or a swapped upload is refused at ingest, and nothing half-loaded stays", async () => {
    const fresh = await startTestStack();
    try {
      const c = await startCollaboration(fresh.url, fresh.simDir);
      const upload = async (owner: "advertiser" | "publisher", which: "purchases" | "exposures") => {
        const file = join(fresh.dir, `${which}.csv`);
        writeFileSync(file, [...useCaseRows(which, { identities: 300 })].join(""));
        return (await uploadFile(c.clients[owner], file)).digest;
      };
      const mine = await upload("advertiser", "purchases");
      const theirs = await upload("publisher", "exposures");
      const path = (d: string) => filesUnder(fresh.storeDir).find((f) => f.endsWith(d))!;
      const original = readFileSync(path(mine));
      const flipped = Buffer.from(original);
      flipped[original.length - 40]! ^= 1;
      for (const [what, bytes] of [
        ["changed byte", flipped],
        ["swapped upload", readFileSync(path(theirs))],
      ] as const) {
        writeFileSync(path(mine), bytes);
        const err = await grant(c.clients.advertiser, {
          dataset: "advertiser_purchases",
          ciphertextDigest: mine,
        }).catch((e) => e);
        expect(err?.code, what).toBe("ERR_HOST");
        // Whichever check fires first (header MAC under the granted key, chunk tag, or the
        // ciphertext digest at the end), the enclave refuses it.
        expect(["ERR_DIGEST_MISMATCH", "ERR_AGE_DECRYPT"], what).toContain(err?.serverCode);
      }
      // Restored, the same grant loads in full: nothing was left behind by the refused attempts.
      writeFileSync(path(mine), original);
      const ok = await grant(c.clients.advertiser, {
        dataset: "advertiser_purchases",
        ciphertextDigest: mine,
      });
      expect(ok.rows).toBe(
        [...useCaseRows("purchases", { identities: 300 })].join("").trim().split("\n").length - 1,
      );
    } finally {
      await fresh.stop();
    }
  });
});
