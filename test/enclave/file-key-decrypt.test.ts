/** Decryption with a granted file key (protocol/age/file-key-decrypt.ts). */

import { base64url } from "jose";
import { describe, expect, it } from "vitest";
import { openHeader } from "../../protocol/age/envelope.js";
import { decryptBatchesWithFileKey } from "../../protocol/age/file-key-decrypt.js";
import { parseHeader } from "../../protocol/age/header.js";
import { cliEncrypt, patternBytes } from "../age/age-cli.js";
import { skipWithout } from "../tools.js";
import { encryptToSelf, makeAgeParty } from "./world.js";

async function collect(batches: AsyncIterable<{ bytes: Uint8Array }>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const b of batches) parts.push(b.bytes);
  return new Uint8Array(Buffer.concat(parts));
}

describe("decryptBatchesWithFileKey", () => {
  it("opens a stock age file with the file key its owner recovered", async (ctx) => {
    skipWithout(ctx, "age");
    const party = await makeAgeParty("owner");
    const plain = patternBytes(200_000);
    const ct = cliEncrypt(plain, [party.recipient]);
    const key = await openHeader(parseHeader(ct).header, [party.identity]);
    expect(
      await collect(decryptBatchesWithFileKey([ct.subarray(0, 5), ct.subarray(5)], key, { workers: 1 })),
    ).toEqual(plain);
  });

  it("refuses another file's key at the header MAC, and a tampered payload", async () => {
    const party = await makeAgeParty("owner");
    const a = await encryptToSelf(party, patternBytes(1000, 2));
    const b = await encryptToSelf(party, patternBytes(1000, 3));
    await expect(
      collect(decryptBatchesWithFileKey([a.ciphertext], base64url.decode(b.fileKey), { workers: 1 })),
    ).rejects.toMatchObject({
      code: "ERR_AGE_DECRYPT",
    });
    const tampered = a.ciphertext.slice();
    tampered[tampered.length - 1]! ^= 1;
    await expect(
      collect(decryptBatchesWithFileKey([tampered], base64url.decode(a.fileKey), { workers: 1 })),
    ).rejects.toMatchObject({
      code: "ERR_AGE_DECRYPT",
    });
    expect(() => decryptBatchesWithFileKey([a.ciphertext], new Uint8Array(15), { workers: 1 })).toThrow(
      expect.objectContaining({ code: "ERR_AGE_DECRYPT" }),
    );
  });
});
