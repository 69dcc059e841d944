/**
 * A party's request names the enclave instance it is for (`aud`: the keys digest its verified
 * evidence binds). Another instance refuses it, even sealed to its own key and correctly signed,
 * without using up the request's seq; over HTTP the host sees the code and a fixed message.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Enclave } from "../../enclave/runtime.js";
import { listen } from "../../enclave/server.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import type { Contract } from "../../protocol/contract/types.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { purchases } from "../sql/usecases.js";
import { grantBody, openWorld, type Party, startEnclave } from "./world.js";

let enclave: Enclave;
let other: Enclave;
let contract: Contract;
let advertiser: Party;

beforeAll(async () => {
  ({ enclave, contract, advertiser } = await openWorld());
  other = await startEnclave();
});
afterAll(() => {
  enclave.close();
  other.close();
});

/** A grant of the advertiser's, signed for the instance with keys digest `audience`, sealed to `enclave`. */
async function grantFor(audience: string, counter: number): Promise<string> {
  const body = await grantBody(contract, advertiser, {
    dataset: purchases.id,
    ciphertextDigest: "3".repeat(64),
  });
  const jws = await signRequest("grant", body, {
    partyId: advertiser.id,
    privateKey: advertiser.privateKey,
    contractDigest: (await contractDigest(contract)).hex,
    audience,
    counter,
  });
  return encryptToEnclave(jws, enclave.keys.jwePublicJwk);
}

describe("request audience", () => {
  it("the two instances have different keys digests", () => {
    expect(other.keys.keysDigest).not.toBe(enclave.keys.keysDigest);
  });

  it("refuses a request made for another instance, and keeps its seq unused", async () => {
    await expect(enclave.handleRequest(await grantFor(other.keys.keysDigest, 1))).rejects.toMatchObject({
      code: "ERR_REQUEST_AUDIENCE",
    });
    // The same seq, for this instance: accepted.
    const reply = await enclave.handleRequest(await grantFor(enclave.keys.keysDigest, 1));
    expect(typeof reply.response).toBe("string");
  });

  it("answers the host with the code and a fixed message, nothing sealed (the signer is not trusted yet)", async () => {
    const served = await listen(enclave, { host: "127.0.0.1", port: 0 });
    try {
      const res = await fetch(`http://${served.address}/v1/requests`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jwe: await grantFor(other.keys.keysDigest, 2) }),
      });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({
        error: { code: "ERR_REQUEST_AUDIENCE", message: "request made for another enclave instance" },
      });
    } finally {
      await served.close();
    }
  });
});
