/**
 * One party's session with one clean room: its keys, the contract it signed, the policy its
 * evidence must meet, and the state it keeps for that host. Every operation that sends data
 * goes through `withEnclave`, which guarantees a verified attestation first and re-verifies
 * when the enclave's keys appear to have changed.
 */

import { keysDigest } from "../../attestation/binding.js";
import { toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { decodeRecipient } from "../../protocol/age/keys.js";
import { type AuditHead, isAuditHead } from "../../protocol/audit/entry.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import type { ApprovedQuery, Contract, Parameter } from "../../protocol/contract/types.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import { EnvelopeError, ResponseSignatureError } from "../../protocol/jose/errors.js";
import type {
  ParamValue,
  RequestBodies,
  RequestKind,
  ResponsePayload,
} from "../../protocol/jose/messages.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { x25519PublicJwk } from "../../protocol/jose/x25519.js";
import { type AgeDecrypt, decryptAge } from "./age.js";
import { type Attested, attest, policyFingerprint, sameKeys } from "./attest.js";
import { checkContinuity } from "./continuity.js";
import { HostError, openHostError } from "./errors.js";
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
  #continuous = false;

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

  /**
   * Signs a request with the party key and a fresh counter, for the attested instance (`aud`, its
   * keys digest), and encrypts it to the enclave.
   */
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
      audience: toHex(await keysDigest(enclave.keys)),
      counter: await this.state.nextSeq(this.partyId),
      nonce,
    });
    const enclaveKey = x25519PublicJwk(decodeRecipient(enclave.keys.ageRecipient));
    return { jwe: await encryptToEnclave(jws, enclaveKey), nonce };
  }

  /**
   * POSTs a sealed request's JSON to the host. A refusal's sealed detail is opened for this party
   * (checked against the attested key and the request's nonce), so the error names the row,
   * column, parameter or dataset the host never sees. `long`: as HostClient.postJson.
   */
  async send<T>(
    path: string,
    body: unknown,
    req: SealedRequest,
    enclave: Attested,
    options: { long?: boolean } = {},
  ): Promise<T> {
    try {
      return await this.host.postJson<T>(path, body, options);
    } catch (e) {
      throw await openHostError(e, {
        decrypt: this.decrypt,
        identity: this.keys.ageIdentity,
        enclaveSigningKey: enclave.keys.signingKey,
        inReplyTo: req.nonce,
      });
    }
  }

  /**
   * Before the first request that acts: the host's log must still hold the highest head this
   * party saw, or the clean room was reset (or rolled back) and nothing is sent (continuity.ts).
   */
  async checkContinuity(): Promise<void> {
    if (this.#continuous) return;
    await checkContinuity(this.host, this.state);
    this.#continuous = true;
  }

  /**
   * Runs `op` against the attested enclave. If the enclave could not open our envelope (its keys
   * changed, e.g. a restart), re-attests and, only if the keys did change, runs `op` once more.
   */
  async withEnclave<T>(op: (enclave: Attested) => Promise<T>): Promise<T> {
    await this.checkContinuity();
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

  /**
   * Remembers the head of a signed answer that did not reply to this party's own request, for
   * `audit verify` (state.ts: answers to its own requests go through `state.answeredHead`).
   */
  async observeHead(head: unknown): Promise<AuditHead> {
    if (!isAuditHead(head)) throw new EnvelopeError("response carries no audit head");
    await this.state.observeHead(head);
    return head;
  }

  /** The approved query `id`; an unknown id is refused with the list of the contract's queries. */
  approvedQuery(id: string): ApprovedQuery {
    const q = this.contract.queries.find((x) => x.id === id);
    if (!q) {
      throw new UsageError(
        `no query ${id} in contract ${this.contract.id} (queries: ${this.contract.queries.map((x) => x.id).join(", ")})`,
      );
    }
    return q;
  }

  /** The approved query `id` when this party may run it. */
  runnableQuery(id: string): ApprovedQuery {
    const q = this.approvedQuery(id);
    if (!q.runners.includes(this.partyId)) {
      throw new UsageError(
        `query ${id}: party ${this.partyId} may not run it (runners: ${q.runners.join(", ")})`,
      );
    }
    return q;
  }

  /**
   * Command-line values typed by the contract's declared parameters, checked here before anything
   * is sent: an unknown or missing parameter is named, with the query's list of parameters.
   */
  typedParams(queryId: string, raw: Record<string, string>): Record<string, ParamValue> {
    const q = this.approvedQuery(queryId);
    const list = q.parameters.length ? q.parameters.map((p) => `${p.name} (${p.type})`).join(", ") : "none";
    const out: Record<string, ParamValue> = {};
    for (const [name, value] of Object.entries(raw)) {
      const p = q.parameters.find((x) => x.name === name);
      if (!p) throw new UsageError(`query ${queryId}: unknown parameter ${name} (its parameters: ${list})`);
      out[name] = typedParam(queryId, p, value);
    }
    const missing = q.parameters.filter((p) => !(p.name in out)).map((p) => p.name);
    if (missing.length) {
      throw new UsageError(
        `query ${queryId}: missing parameter ${missing.join(", ")} (its parameters: ${list}; give --param NAME=VALUE)`,
      );
    }
    return out;
  }
}

const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?$/;
/** The enclave's limit on a VARCHAR parameter, in UTF-8 bytes. */
const MAX_VARCHAR_BYTES = 4096;

function validDay(y: string, m: string, d: string): boolean {
  const t = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  return (
    t.getUTCFullYear() === Number(y) && t.getUTCMonth() + 1 === Number(m) && t.getUTCDate() === Number(d)
  );
}

/** One value as the enclave will bind it (enclave/sql/params.ts takes the same forms). */
function typedParam(queryId: string, p: Parameter, value: string): ParamValue {
  const bad = (what: string) => new UsageError(`query ${queryId}: parameter ${p.name} (${p.type}) ${what}`);
  switch (p.type) {
    case "BIGINT": {
      if (!/^-?\d{1,19}$/.test(value)) throw bad("must be a whole number");
      const n = BigInt(value);
      if (n < INT64.min || n > INT64.max) throw bad("is out of the 64-bit range");
      // Safe integers travel as JSON numbers; larger ones as decimal text, which the enclave accepts.
      return Number.isSafeInteger(Number(n)) ? Number(n) : n.toString();
    }
    case "DOUBLE": {
      const n = Number(value);
      if (value.trim() === "" || !Number.isFinite(n)) throw bad("must be a number, e.g. 12.5");
      return n;
    }
    case "BOOLEAN":
      if (value !== "true" && value !== "false") throw bad("must be true or false");
      return value === "true";
    case "DATE": {
      const m = DATE.exec(value);
      if (!m || !validDay(m[1]!, m[2]!, m[3]!)) throw bad("must be a date YYYY-MM-DD");
      return value;
    }
    case "TIMESTAMP": {
      const m = TIMESTAMP.exec(value);
      const clock = m && Number(m[4]) <= 23 && Number(m[5]) <= 59 && Number(m[6] ?? 0) <= 59;
      if (!m || !clock || !validDay(m[1]!, m[2]!, m[3]!)) {
        throw bad("must be a time YYYY-MM-DD hh:mm[:ss[.ffffff]][Z|±hh:mm]");
      }
      return value;
    }
    default:
      if (new TextEncoder().encode(value).length > MAX_VARCHAR_BYTES) throw bad("is longer than 4096 bytes");
      return value;
  }
}
