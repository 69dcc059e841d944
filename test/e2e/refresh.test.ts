/**
 * A weekly refresh through the SDK against the real host and enclave: the grant reports the
 * load's progress, a replacement names the version it replaces, queries name the versions they
 * read, and a grant whose answer is lost on the way back is repeated by the client and answered
 * with the first load's answer (loaded once).
 */
import { writeFileSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grant, query, uploadFile } from "../../client/node/index.js";
import type { LoadProgress } from "../../client/sdk/grant.js";
import type { SqlEngine } from "../../enclave/sql/engine.js";
import { parseEntryPayload } from "../../protocol/audit/entry.js";
import { type Collaboration, startCollaboration } from "../../scripts/demo/flow.js";
import { useCaseRows } from "../../scripts/demo/usecases.js";
import { startTestStack, type TestStack } from "./stack.js";

let stack: TestStack;
let collab: Collaboration;
let front: Server;
/** When set, the next POST /grants is relayed but its answer never reaches the client. */
let loseNextGrantAnswer = false;

/** A TCP proxy in front of the host that can drop one grant's answer. */
function frontProxy(port: number): Promise<Server> {
  const server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port });
    // Connections are kept alive: any request on this one may be the grant.
    let lose = false;
    client.on("data", (d: Buffer) => {
      if (loseNextGrantAnswer && d.subarray(0, 32).toString("latin1").startsWith("POST /api/v1/grants ")) {
        loseNextGrantAnswer = false;
        lose = true;
      }
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (lose) client.destroy();
      else client.write(d);
    });
    for (const s of [client, upstream]) s.on("error", () => undefined);
    client.on("close", () => {
      // The host finishes what it was asked even when the client is gone.
      if (!lose) upstream.destroy();
    });
    upstream.on("close", () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function csv(name: string, identities: number): string {
  const path = join(stack.dir, name);
  writeFileSync(path, [...useCaseRows("purchases", { identities })].join(""));
  return path;
}

beforeAll(async () => {
  stack = await startTestStack({ record: false });
  front = await frontProxy(Number(new URL(stack.url).port));
  const port = (front.address() as { port: number }).port;
  collab = await startCollaboration(`http://127.0.0.1:${port}`, stack.simDir);
});
afterAll(async () => {
  await new Promise((r) => front.close(r));
  await stack.stop();
});

const loadEntries = () =>
  stack.enclave
    .audit()
    .entries.map((j) => parseEntryPayload(Buffer.from(j.split(".")[1]!, "base64url"))!)
    .filter((e) => e.kind === "dataset-loaded");

describe("a weekly refresh", () => {
  it("loads, replaces with progress, and queries name the version they read", async () => {
    const advertiser = collab.clients.advertiser;
    const publisher = collab.clients.publisher;
    const exposures = await uploadFile(
      publisher,
      (() => {
        const p = join(stack.dir, "exposures.csv");
        writeFileSync(p, [...useCaseRows("exposures", { identities: 2000 })].join(""));
        return p;
      })(),
    );
    await grant(publisher, { dataset: "publisher_exposures", ciphertextDigest: exposures.digest });

    const week1 = await uploadFile(advertiser, csv("week1.csv", 2000));
    const v1 = await grant(advertiser, { dataset: "advertiser_purchases", ciphertextDigest: week1.digest });
    expect(v1).toMatchObject({ version: 1, mode: "new" });

    const week2 = await uploadFile(advertiser, csv("week2.csv", 20_000));
    const seen: LoadProgress[] = [];
    // A query run holding the tables keeps the load waiting before its switch, fully read, so
    // the client's polls see it in progress.
    const engine = (stack.enclave as unknown as { engine: SqlEngine }).engine;
    let release!: () => void;
    const held = engine.tables.read(() => new Promise<void>((r) => (release = r)));
    const granting = grant(advertiser, {
      dataset: "advertiser_purchases",
      ciphertextDigest: week2.digest,
      previous: 1,
      mode: "replace",
      onProgress: (p) => seen.push(p),
      progressEveryMs: 20,
    });
    // Released once ten polls in a row saw the whole file read and the same rows (the load then
    // waits at its switch), so the last progress seen is the finished read whatever the speed.
    const fullyRead = () => {
      const last = seen.slice(-10);
      return (
        last.length === 10 &&
        last.every((p) => p.bytes === week2.size && p.rows > 0 && p.rows === last[0]!.rows)
      );
    };
    for (let i = 0; i < 400 && !fullyRead(); i++) await new Promise((r) => setTimeout(r, 25));
    release();
    await held;
    const v2 = await granting;
    expect(v2).toMatchObject({ version: 2, mode: "replace", totalRows: v2.rows });
    expect(seen.length).toBeGreaterThan(0);
    for (const p of seen) {
      expect(p.version).toBe(2);
      expect(p.total).toBe(week2.size);
      expect(p.bytes).toBeLessThanOrEqual(week2.size);
      expect(p.rows).toBeLessThanOrEqual(v2.rows!);
    }
    expect(seen.at(-1)).toMatchObject({ bytes: week2.size, rows: v2.rows });

    const run = await query(advertiser, {
      queryId: "closed-loop",
      params: { campaign: "spring24" },
      format: "json",
    });
    expect(run.response.versions).toEqual({ advertiser_purchases: 2, publisher_exposures: 1 });
  });

  it("repeats a grant whose answer was lost; the load happens once", async () => {
    const advertiser = collab.clients.advertiser;
    const week3 = await uploadFile(advertiser, csv("week3.csv", 3000));
    const before = loadEntries().length;
    loseNextGrantAnswer = true;
    const v3 = await grant(advertiser, {
      dataset: "advertiser_purchases",
      ciphertextDigest: week3.digest,
      previous: 2,
      mode: "append",
    });
    expect(loseNextGrantAnswer).toBe(false); // the first answer was indeed dropped
    expect(v3).toMatchObject({ version: 3, mode: "append" });
    expect(v3.quality).toBeDefined();
    const added = loadEntries().slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]!.data).toMatchObject({ ciphertextDigest: week3.digest, version: 3, mode: "append" });
  });
});
