/**
 * A party's keys: an ES256 signing key (its public half is the contract's `signingKey`) and an
 * age X25519 identity (its recipient is the contract's `ageRecipient`). The serialised form is a
 * small JSON document the CLI keeps with mode 0600.
 */
import { UsageError } from "../../attestation/errors.js";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import type { Contract, Party } from "../../protocol/contract/types.js";

export const KEY_FILE_KIND = "cleanroom-party-keys";

export interface PartyKeyFile {
  kind: typeof KEY_FILE_KIND;
  version: 1;
  /** ES256 private JWK {kty, crv, x, y, d}. */
  signingKey: JsonWebKey;
  /** "AGE-SECRET-KEY-1..." */
  ageIdentity: string;
}

/** What a party publishes for the contract. */
export interface PartyPublicKeys {
  signingKey: JsonWebKey;
  ageRecipient: string;
}

export interface PartyKeys extends PartyPublicKeys {
  /** Non-extractable ES256 signing key. */
  privateKey: CryptoKey;
  ageIdentity: string;
}

const EC = { name: "ECDSA", namedCurve: "P-256" } as const;

function publicJwk(jwk: JsonWebKey): JsonWebKey {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

export async function generatePartyKeys(): Promise<PartyKeyFile> {
  const pair = (await crypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  return {
    kind: KEY_FILE_KIND,
    version: 1,
    signingKey: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d },
    ageIdentity: generateIdentity(),
  };
}

/** Parses and imports a key file (JSON text or value); refuses anything but the exact shape. */
export async function loadPartyKeys(input: string | unknown): Promise<PartyKeys> {
  let v: unknown = input;
  if (typeof input === "string") {
    try {
      v = JSON.parse(input);
    } catch {
      throw new UsageError("key file: not JSON");
    }
  }
  const f = v as Partial<PartyKeyFile> | null;
  if (!f || f.kind !== KEY_FILE_KIND || f.version !== 1 || typeof f.ageIdentity !== "string") {
    throw new UsageError("key file: not a cleanroom party key file");
  }
  const jwk = f.signingKey;
  if (jwk?.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.d !== "string") {
    throw new UsageError("key file: signingKey must be a private P-256 JWK");
  }
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d },
      EC,
      false,
      ["sign"],
    );
  } catch {
    throw new UsageError("key file: signingKey does not import");
  }
  return {
    privateKey,
    signingKey: publicJwk(jwk),
    ageIdentity: f.ageIdentity,
    ageRecipient: await identityToRecipient(f.ageIdentity),
  };
}

export async function publicKeysOf(file: PartyKeyFile): Promise<PartyPublicKeys> {
  return {
    signingKey: publicJwk(file.signingKey),
    ageRecipient: await identityToRecipient(file.ageIdentity),
  };
}

/** The contract party whose signing key is ours; the key file does not name the party itself. */
export function findParty(contract: Contract, keys: PartyPublicKeys): Party {
  const party = contract.parties.find(
    (p) => p.signingKey.x === keys.signingKey.x && p.signingKey.y === keys.signingKey.y,
  );
  if (!party) throw new UsageError("key: not the signing key of any party of the contract");
  return party;
}
