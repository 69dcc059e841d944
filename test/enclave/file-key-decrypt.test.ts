/** Decryption with a granted file key (protocol/age/file-key-decrypt.ts). */

import { base64url } from "jose";
import { describe, expect, it } from "vitest";
import { openHeader } from "../../protocol/age/envelope.js";
import { decryptChunksWithFileKey } from "../../protocol/age/file-key-decrypt.js";
import { parseHeader } from "../../protocol/age/header.js";
import { cliEncrypt, patternBytes } from "../age/age-cli.js";
import { encryptToSelf, makeAgeParty } from "./world.js";

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

describe("decryptChunksWithFileKey", () => {
  it("opens a stock age file with the file key its owner recovered", async () => {
    const party = await makeAgeParty("owner");
    const plain = patternBytes(200_000);
    const ct = cliEncrypt(plain, [party.recipient]);
    const key = await openHeader(parseHeader(ct).header, [party.identity]);
    expect(await collect(decryptChunksWithFileKey([ct.subarray(0, 5), ct.subarray(5)], key))).toEqual(plain);
  });

  it("refuses another file's key at the header MAC, and a tampered payload", async () => {
    const party = await makeAgeParty("owner");
    const a = await encryptToSelf(party, patternBytes(1000, 2));
    const b = await encryptToSelf(party, patternBytes(1000, 3));
    await expect(
      collect(decryptChunksWithFileKey([a.ciphertext], base64url.decode(b.fileKey))),
    ).rejects.toMatchObject({
      code: "ERR_AGE_DECRYPT",
    });
    const tampered = a.ciphertext.slice();
    tampered[tampered.length - 1]! ^= 1;
    await expect(
      collect(decryptChunksWithFileKey([tampered], base64url.decode(a.fileKey))),
    ).rejects.toMatchObject({
      code: "ERR_AGE_DECRYPT",
    });
    expect(() => decryptChunksWithFileKey([a.ciphertext], new Uint8Array(15))).toThrow(
      expect.objectContaining({ code: "ERR_AGE_DECRYPT" }),
    );
  });
});
