/**
 * loadGranted (enclave/load.ts) end to end over the parallel decryption: what binds an upload to
 * its grant (docs/PROTOCOL.md). A file-key grant refuses another file, a truncated or reordered
 * one at the header MAC or a chunk tag; a grant without a file key refuses any other file by its
 * SHA-256. Every refusal leaves no table and no scratch file, and the file key is wiped.
 */
import { readdirSync } from "node:fs";
import { base64url } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Grant } from "../../enclave/grants.js";
import { EnclaveKeyring } from "../../enclave/keys.js";
import { loadGranted } from "../../enclave/load.js";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { parseHeader } from "../../protocol/age/header.js";
import { encryptBytes } from "../../protocol/age/stream-node.js";
import { hex, people } from "../sql/helpers.js";
import { encryptToSelf, makeAgeParty, type Party, pieces, sha256hex } from "./world.js";

const SEALED = 64 * 1024 + 16;
/** Enough rows for several 4 MiB decrypt batches, so the worker pool carries the load. */
const ROWS = 120_000;
const csv = new TextEncoder().encode(
  `id,age,joined,score\n${Array.from({ length: ROWS }, (_, i) => `${hex(i)},${i % 90},2024-01-02,${i % 7}\n`).join("")}`,
);

let engine: SqlEngine;
let keys: EnclaveKeyring;
let owner: Party;
beforeEach(async () => {
  engine = await openEngine({ threads: 16, memoryLimit: "1GB" });
  keys = await EnclaveKeyring.generate();
  owner = await makeAgeParty("acme");
});
afterEach(() => engine.close());

function grantFor(ciphertext: Uint8Array, fileKey?: string): Grant {
  return {
    dataset: people.id,
    party: owner.id,
    ciphertextDigest: sha256hex(ciphertext),
    nonce: "n",
    ...(fileKey ? { fileKey: base64url.decode(fileKey) } : {}),
  };
}

const load = (grant: Grant, ciphertext: Uint8Array | AsyncIterable<Uint8Array>) =>
  loadGranted({
    engine,
    keys,
    dataset: people,
    grant,
    ciphertext: ciphertext instanceof Uint8Array ? pieces(ciphertext, 1 << 20) : ciphertext,
  });

async function nothingLeft(): Promise<void> {
  const r = await engine.connection.runAndReadAll("SELECT count(*) FROM duckdb_tables()");
  expect(Number(r.getRows()[0]?.[0])).toBe(0);
  expect(readdirSync(engine.scratchDir)).toEqual([]);
}

/** The file with its sealed chunks `i` and `j` exchanged. */
function swapChunks(ct: Uint8Array, i: number, j: number): Uint8Array {
  const start = parseHeader(ct).length + 16;
  const out = ct.slice();
  out.set(ct.subarray(start + j * SEALED, start + (j + 1) * SEALED), start + i * SEALED);
  out.set(ct.subarray(start + i * SEALED, start + (i + 1) * SEALED), start + j * SEALED);
  return out;
}

describe("a grant with the file key (the SDK's upload)", () => {
  it("loads every row on worker threads, and wipes the key", async () => {
    const { ciphertext, fileKey } = await encryptToSelf(owner, csv);
    const grant = grantFor(ciphertext, fileKey);
    const report = await load(grant, ciphertext);
    expect(report).toMatchObject({ rowsAccepted: ROWS, rowsRejected: 0, identity: { duplicates: 0 } });
    expect(grant.fileKey).toEqual(new Uint8Array(16));
  });

  it("refuses another upload of the owner, a truncated one and a reordered one, leaving nothing", async () => {
    const { ciphertext, fileKey } = await encryptToSelf(owner, csv);
    const other = await encryptToSelf(owner, csv);
    const start = parseHeader(ciphertext).length + 16;
    const cases: [string, Uint8Array, string][] = [
      ["another file", other.ciphertext, "header: MAC mismatch"],
      [
        "cut at a chunk boundary",
        ciphertext.subarray(0, start + 70 * SEALED),
        "payload: chunk authentication failed",
      ],
      [
        "cut at a batch boundary",
        ciphertext.subarray(0, start + 64 * SEALED),
        "payload: chunk authentication failed",
      ],
      [
        "cut inside a chunk",
        ciphertext.subarray(0, ciphertext.length - 1000),
        "payload: chunk authentication failed",
      ],
      ["two chunks exchanged", swapChunks(ciphertext, 3, 100), "payload: chunk authentication failed"],
    ];
    for (const [what, bytes, message] of cases) {
      const grant = grantFor(ciphertext, fileKey);
      const err = await load(grant, bytes).catch((e) => e);
      expect(err, what).toMatchObject({ code: "ERR_AGE_DECRYPT", message });
      expect(grant.fileKey, what).toEqual(new Uint8Array(16));
      await nothingLeft();
    }
    expect(await load(grantFor(ciphertext, fileKey), ciphertext)).toMatchObject({ rowsAccepted: ROWS });
  });
});

describe("a grant without a file key (a file encrypted to the enclave)", () => {
  it("loads the granted file and refuses any other by its digest", async () => {
    const recipient = keys.publicKeys.ageRecipient;
    const ciphertext = await encryptBytes(csv, [recipient]);
    const swapped = await encryptBytes(csv.subarray(0, 200_000), [recipient]);
    const start = parseHeader(ciphertext).length + 16;
    const cases: [string, Uint8Array, string][] = [
      ["another valid file", swapped, "ERR_DIGEST_MISMATCH"],
      ["cut at a batch boundary", ciphertext.subarray(0, start + 64 * SEALED), "ERR_DIGEST_MISMATCH"],
      // A bad chunk before the end fails first, as in the serial path.
      ["two chunks exchanged", swapChunks(ciphertext, 1, 2), "ERR_AGE_DECRYPT"],
    ];
    for (const [what, bytes, code] of cases) {
      await expect(load(grantFor(ciphertext), bytes), what).rejects.toMatchObject({ code });
      await nothingLeft();
    }
    expect(await load(grantFor(ciphertext), ciphertext)).toMatchObject({ rowsAccepted: ROWS });
  });

  it("reports a transport failure as such", async () => {
    const ciphertext = await encryptBytes(csv, [keys.publicKeys.ageRecipient]);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield ciphertext.subarray(0, 9 << 20);
      throw new Error("connection reset");
    }
    await expect(load(grantFor(ciphertext), failing())).rejects.toMatchObject({ code: "ERR_INGEST_FAILED" });
    await nothingLeft();
  });
});
