/**
 * One party's session with one clean room: its keys, the contract it signed, the policy its
 * evidence must meet, and the state it keeps for that host. Every operation that sends data
 * goes through `withEnclave`, which guarantees a verified attestation first and re-verifies
 * when the enclave's keys appear to have changed.
 */

import { toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { decodeRecipient } from "../../protocol/age/keys.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import type { Contract } from "../../protocol/contract/types.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import { EnvelopeError, ResponseSignatureError } from "../../protocol/jose/errors.js";
import type { RequestBodies, RequestKind, ResponsePayload } from "../../protocol/jose/messages.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { x25519PublicJwk } from "../../protocol/jose/x25519.js";
import { type AgeDecrypt, decryptAge } from "./age.js";
import { type Attested, attest, policyFingerprint, sameKeys } from "./attest.js";
import { HostError } from "./errors.js";
import type { HostClient } from "./http.js";
import { findParty, type PartyKeys } from "./keys.js";
import { HostState, type StateStore } from "./state.js";

export interface ClientOptions {
  host: HostClient;
  store: StateStore;
  policy: EvidencePolicy;
  /** The validated contract this party approved. */
  contract: Contract;
  keys: PartyKeys;
  /** Whole-file age decryption; default the portable age-encryption package. */
  decrypt?: AgeDecrypt;
}

/** A signed request ready to send: the JWE for the enclave and the nonce its answer must echo. */
export interface SealedRequest {
  jwe: string;
  nonce: string;
}

export class CleanroomClient {
  readonly host: HostClient;
  readonly state: HostState;
  readonly policy: EvidencePolicy;
  readonly contract: Contract;
  readonly contractDigest: string;
  readonly partyId: string;
  readonly keys: PartyKeys;
  readonly decrypt: AgeDecrypt;
  #policyId: string;
  #current: Attested | undefined;

  private constructor(o: ClientOptions, state: HostState, digest: string, policyId: string) {
    this.host = o.host;
    this.state = state;
    this.policy = o.policy;
    this.contract = o.contract;
    this.contractDigest = digest;
    this.partyId = findParty(o.contract, o.keys).id;
    this.keys = o.keys;
    this.decrypt = o.decrypt ?? decryptAge;
    this.#policyId = policyId;
  }

  static async open(o: ClientOptions): Promise<CleanroomClient> {
    return new CleanroomClient(
      o,
      await HostState.open(o.store, o.host.baseUrl),
      (await contractDigest(o.contract)).hex,
      await policyFingerprint(o.policy),
    );
  }

  /** The verified enclave keys: from the cache when it was verified under this policy and contract. */
  async attestation(): Promise<Attested> {
    if (this.#current) return this.#current;
    const cached = await this.state.attestation();
    if (cached && cached.policy === this.#policyId && cached.contractDigest === this.contractDigest) {
      this.#current = { result: cached.result, keys: cached.keys };
      return this.#current;
    }
    return this.reattest();
  }

  /** Fresh evidence, fresh nonce; throws AttestationRefusedError and forgets the cache on failure. */
  async reattest(): Promise<Attested> {
    this.#current = undefined;
    const a = await attest(this.host, { policy: this.policy, contractDigest: this.contractDigest });
    await this.state.saveAttestation({
      policy: this.#policyId,
      contractDigest: this.contractDigest,
      keys: a.keys,
      result: a.result,
      verifiedAt: new Date().toISOString(),
    });
    this.#current = a;
    return a;
  }

  /** Signs a request with the party key and a fresh counter, and encrypts it to the enclave. */
  async seal<K extends RequestKind>(
    kind: K,
    body: RequestBodies[K],
    enclave: Attested,
  ): Promise<SealedRequest> {
    const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
    const jws = await signRequest(kind, body, {
      partyId: this.partyId,
      privateKey: this.keys.privateKey,
      contractDigest: this.contractDigest,
      counter: await this.state.nextSeq(this.partyId),
      nonce,
    });
    const enclaveKey = x25519PublicJwk(decodeRecipient(enclave.keys.ageRecipient));
    return { jwe: await encryptToEnclave(jws, enclaveKey), nonce };
  }

  /**
   * Runs `op` against the attested enclave. If the enclave could not open our envelope (its keys
   * changed, e.g. a restart), re-attests and, only if the keys did change, runs `op` once more.
   */
  async withEnclave<T>(op: (enclave: Attested) => Promise<T>): Promise<T> {
    const enclave = await this.attestation();
    try {
      return await op(enclave);
    } catch (e) {
      if (!(e instanceof HostError && e.serverCode === EnvelopeError.code)) throw e;
      const fresh = await this.reattest();
      if (sameKeys(fresh.keys, enclave.keys)) throw e;
      return op(fresh);
    }
  }

  /**
   * Verifies an enclave response with the attested signing key. A signature by another key
   * triggers one fresh attestation: the response is accepted only if it verifies with the newly
   * attested key. `inReplyTo` must be the nonce of the request it answers, when given.
   */
  async verifyResponse<B>(jws: unknown, enclave: Attested, inReplyTo?: string): Promise<ResponsePayload<B>> {
    if (typeof jws !== "string") throw new ResponseSignatureError("not a cleanroom response");
    let payload: ResponsePayload<B>;
    try {
      payload = await verifyResponse<B>(jws, enclave.keys.signingKey);
    } catch (e) {
      if (!(e instanceof ResponseSignatureError)) throw e;
      const fresh = await this.reattest();
      if (sameKeys(fresh.keys, enclave.keys)) throw e;
      payload = await verifyResponse<B>(jws, fresh.keys.signingKey);
    }
    if (inReplyTo !== undefined && payload.inReplyTo !== inReplyTo) {
      throw new ResponseSignatureError("response answers another request");
    }
    return payload;
  }

  /** Checks a signed head against the highest this party has seen, then remembers it. */
  async observeHead(head: unknown): Promise<AuditHead> {
    if (!isHead(head)) throw new EnvelopeError("response carries no audit head");
    await this.state.observeHead(head);
    return head;
  }

  /** The contract's parameter types decide how a command-line value is typed. */
  typedParams(queryId: string, raw: Record<string, string>): Record<string, string | number | boolean> {
    const q = this.contract.queries.find((x) => x.id === queryId);
    if (!q) throw new UsageError("query: not an approved query of the contract");
    const out: Record<string, string | number | boolean> = {};
    for (const [name, value] of Object.entries(raw)) {
      const p = q.parameters.find((x) => x.name === name);
      if (!p) throw new UsageError("query: unknown parameter");
      if (p.type === "BIGINT" || p.type === "DOUBLE") {
        const n = Number(value);
        if (value.trim() === "" || !Number.isFinite(n))
          throw new UsageError("query: parameter is not a number");
        out[name] = n;
      } else if (p.type === "BOOLEAN") {
        if (value !== "true" && value !== "false") throw new UsageError("query: parameter is not true/false");
        out[name] = value === "true";
      } else {
        out[name] = value;
      }
    }
    for (const p of q.parameters) if (!(p.name in out)) throw new UsageError("query: missing parameter");
    return out;
  }
}

export function isHead(v: unknown): v is AuditHead {
  const h = v as AuditHead | null;
  return (
    typeof h === "object" &&
    h !== null &&
    Number.isSafeInteger(h.seq) &&
    h.seq >= 0 &&
    typeof h.hash === "string" &&
    /^[0-9a-f]{64}$/.test(h.hash)
  );
}
