import { describe, expect, it } from "vitest";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { decryptBytes, encryptBytes } from "../../protocol/age/stream-node.js";
import { needsTool } from "../tools.js";
import { cliDecrypt, cliEncrypt, cliRecipientOf, patternBytes } from "./age-cli.js";

const K = 64 * 1024;
// Empty, tiny, around one chunk (64 KiB exactly is a full-size final chunk), several chunks.
const SIZES = [0, 1, K - 1, K, K + 1, 2 * K, 3 * K + 17];

async function party(): Promise<{ identity: string; recipient: string }> {
  const identity = generateIdentity();
  return { identity, recipient: await identityToRecipient(identity) };
}

describe("interop with the stock age CLI", () => {
  needsTool("age", "age-keygen");

  it("derives the same recipient as age-keygen -y", async () => {
    for (let i = 0; i < 5; i++) {
      const { identity, recipient } = await party();
      expect(recipient).toBe(cliRecipientOf(identity));
    }
  });

  it.each(SIZES)("age -r → our decrypt, %i bytes", async (n) => {
    const { identity, recipient } = await party();
    const plaintext = patternBytes(n, n + 1);
    const ciphertext = cliEncrypt(plaintext, [recipient]);
    expect(await decryptBytes(ciphertext, identity)).toEqual(plaintext);
  });

  it.each(SIZES)("our encrypt → age -d, %i bytes", async (n) => {
    const { identity, recipient } = await party();
    const plaintext = patternBytes(n, n + 7);
    const ciphertext = await encryptBytes(plaintext, [recipient]);
    expect(cliDecrypt(ciphertext, [identity])).toEqual(plaintext);
  });

  it("multi-recipient both ways: every party decrypts, an outsider does not", async () => {
    const parties = await Promise.all([party(), party(), party()]);
    const outsider = await party();
    const recipients = parties.map((p) => p.recipient);
    const plaintext = patternBytes(K + 5, 99);

    const ours = await encryptBytes(plaintext, recipients);
    for (const p of parties) expect(cliDecrypt(ours, [p.identity])).toEqual(plaintext);
    expect(() => cliDecrypt(ours, [outsider.identity])).toThrow(/no identity matched/);

    const theirs = cliEncrypt(plaintext, recipients);
    for (const p of parties) expect(await decryptBytes(theirs, p.identity)).toEqual(plaintext);
    await expect(decryptBytes(theirs, outsider.identity)).rejects.toMatchObject({
      code: "ERR_AGE_NO_IDENTITY",
    });
    // Several identities, only the last of which matches.
    expect(await decryptBytes(theirs, [outsider.identity, parties[2]!.identity])).toEqual(plaintext);
  });
});
