/**
 * What the partner SDK accepts from a host that may lie: an ingest answer must reply to this
 * grant's nonce, and the quality report must hash to the digest that answer signs before it is
 * decrypted; a refusal's sealed detail is shown only when the attested enclave signed it for this
 * request. The fake host signs with the fake enclave's attested key and tampers on request.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { reportError } from "../../client/cli/output.js";
import { uploadFile } from "../../client/node/upload.js";
import { decryptAge } from "../../client/sdk/age.js";
import { type CleanroomClient, grant, query } from "../../client/sdk/index.js";
import { FakeHost } from "./fake-host.js";
import { makeContract, makeParty, type TestParty } from "./setup.js";

let platform: SimPlatform;
let alice: TestParty;
let bob: TestParty;
let dir: string;
let csv: string;

beforeAll(async () => {
  [platform, alice, bob] = await Promise.all([createSimPlatform(), makeParty("alice"), makeParty("bob")]);
  dir = await mkdtemp(join(tmpdir(), "cleanroom-sealed-"));
  csv = join(dir, "purchases.csv");
  await writeFile(csv, `email_sha256,amount\n${`${"a".repeat(64)},10\n`.repeat(100)}`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let host: FakeHost;
beforeEach(async () => {
  host = await FakeHost.start(platform, makeContract(alice, bob));
  return () => host.close();
});

/** A client of `party` that counts what it decrypts. */
async function client(party: TestParty): Promise<{ c: CleanroomClient; decrypted: Uint8Array[] }> {
  const decrypted: Uint8Array[] = [];
  const c = await host.openClient(party, {
    decrypt: async (ciphertext, identity) => {
      decrypted.push(ciphertext);
      return decryptAge(ciphertext, identity);
    },
  });
  return { c, decrypted };
}

describe("the ingest answer", () => {
  it("is accepted when it answers this grant and signs the quality report's digest", async () => {
    const { c } = await client(alice);
    const up = await uploadFile(c, csv);
    const g = await grant(c, { dataset: "purchases", ciphertextDigest: up.digest });
    expect(g.rows).toBe(3);
    expect(JSON.parse(new TextDecoder().decode(g.quality))).toEqual({ rowsAccepted: 3 });
  });

  it("replayed under another grant's nonce is refused", async () => {
    const { c } = await client(alice);
    const up = await uploadFile(c, csv);
    await grant(c, { dataset: "purchases", ciphertextDigest: up.digest });
    host.replayIngest = true;
    // The grant answer is fresh and genuine; the ingest answer is the first grant's, genuine too.
    await expect(grant(c, { dataset: "purchases", ciphertextDigest: up.digest })).rejects.toMatchObject({
      code: "ERR_RESPONSE_SIGNATURE",
    });
  });

  it("with a swapped quality report is refused before the report is decrypted", async () => {
    const { c, decrypted } = await client(alice);
    const up = await uploadFile(c, csv);
    host.swapQuality = true;
    await expect(grant(c, { dataset: "purchases", ciphertextDigest: up.digest })).rejects.toMatchObject({
      code: "ERR_RESULT_DIGEST",
    });
    expect(decrypted).toEqual([]);
  });
});

describe("a refusal's sealed detail", () => {
  const detail = {
    code: "ERR_QUERY_PARAMETER",
    message: "parameter campaign_secret: not declared",
    parameter: "campaign_secret",
  };
  const run = (c: CleanroomClient) =>
    query(c, { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" });

  it("names the parameter for the requester, and the CLI prints it", async () => {
    const { c } = await client(alice);
    host.refuseQuery = detail;
    const e = await run(c).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "ERR_HOST", status: 400, serverCode: "ERR_QUERY_PARAMETER", detail });
    const lines: string[] = [];
    reportError(e, { write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream);
    expect(lines.join("")).toBe(
      "error ERR_HOST: host answered 400 ERR_QUERY_PARAMETER: parameter campaign_secret: not declared\n",
    );
  });

  it("is not shown when another key signed it (the host can encrypt to a public recipient)", async () => {
    const { c } = await client(alice);
    host.refuseQuery = detail;
    host.rogueKey = (
      (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
        "sign",
        "verify",
      ])) as CryptoKeyPair
    ).privateKey;
    const e = (await run(c).catch((x: unknown) => x)) as Error;
    expect(e).toMatchObject({ code: "ERR_HOST", serverCode: "ERR_QUERY_PARAMETER", detail: undefined });
    expect(e.message).not.toContain("campaign_secret");
    expect(e.message).toContain("did not verify");
  });

  it("is not shown when it answers another request", async () => {
    const { c } = await client(alice);
    host.refuseQuery = detail;
    host.wrongInReplyTo = true;
    const e = (await run(c).catch((x: unknown) => x)) as Error;
    expect(e).toMatchObject({ code: "ERR_HOST", detail: undefined });
    expect(e.message).not.toContain("campaign_secret");
  });

  it("is not shown when it names another code than the one relayed", async () => {
    const { c } = await client(alice);
    host.refuseQuery = detail;
    host.refuseQueryCode = "ERR_MAX_RUNS";
    const e = (await run(c).catch((x: unknown) => x)) as Error;
    expect(e).toMatchObject({ serverCode: "ERR_MAX_RUNS", detail: undefined });
    expect(e.message).not.toContain("campaign_secret");
  });
});
