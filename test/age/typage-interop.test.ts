import {
  Decrypter,
  Encrypter,
  generateX25519Identity,
  identityToRecipient as typageRecipient,
} from "age-encryption";
import { describe, expect, it } from "vitest";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { decryptBytes, encryptBytes } from "../../protocol/age/stream-node.js";
import { patternBytes } from "./age-cli.js";

const K = 64 * 1024;
const SIZES = [0, 1, K, K + 1, 3 * K + 17];

describe("interop with the age-encryption (typage) package, as browsers use it", () => {
  it("agrees on identity → recipient", async () => {
    for (let i = 0; i < 5; i++) {
      const ours = generateIdentity();
      expect(await typageRecipient(ours)).toBe(await identityToRecipient(ours));
      const theirs = await generateX25519Identity();
      expect(await identityToRecipient(theirs)).toBe(await typageRecipient(theirs));
    }
  });

  it.each(SIZES)("typage encrypt → our decrypt, %i bytes", async (n) => {
    const identity = await generateX25519Identity();
    const e = new Encrypter();
    e.addRecipient(await typageRecipient(identity));
    const plaintext = patternBytes(n, n + 3);
    expect(await decryptBytes(await e.encrypt(plaintext), identity)).toEqual(plaintext);
  });

  it.each(SIZES)("our encrypt → typage decrypt, %i bytes", async (n) => {
    const identity = generateIdentity();
    const other = generateIdentity();
    const plaintext = patternBytes(n, n + 5);
    const ciphertext = await encryptBytes(plaintext, [
      await identityToRecipient(other),
      await identityToRecipient(identity),
    ]);
    const d = new Decrypter();
    d.addIdentity(identity);
    expect(await d.decrypt(ciphertext)).toEqual(plaintext);
  });
});
