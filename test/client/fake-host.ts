/**
 * An honest fake of the host + enclave pair for SDK tests: a node:http server answering the
 * partner API (docs/PROTOCOL.md §8) with real material made by the protocol modules — evidence
 * from the simulated SEV-SNP platform binding real enclave keys, requests decrypted and
 * verified, responses and audit entries signed with the enclave key, results age-encrypted.
 * Knobs let a test make it misbehave the ways a compromised host could.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { base64url } from "jose";
import { bindingData, type EnclaveKeys, keysDigest } from "../../attestation/binding.js";
import { fromHex, sha256, toHex } from "../../attestation/bytes.js";
import { isCleanroomError } from "../../attestation/errors.js";
import { bundleEvidence } from "../../attestation/evidence.js";
import type { SimPlatform } from "../../attestation/sim/platform.js";
import { simSnpEvidence } from "../../attestation/sim/snp.js";
import { CleanroomClient, type ClientOptions, HostClient, MemoryStateStore } from "../../client/sdk/index.js";
import { verifyHeaderMac } from "../../protocol/age/file-key.js";
import { parseHeader } from "../../protocol/age/header.js";
import { decodeIdentity, generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { encryptBytes } from "../../protocol/age/stream-node.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { AuditLog } from "../../protocol/audit/log.js";
import {
  ciphertextDigest,
  encodeReceipt,
  newParamsKey,
  paramsDigest,
} from "../../protocol/audit/query-run.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import type { Contract } from "../../protocol/contract/types.js";
import { decryptAtEnclave } from "../../protocol/jose/decrypt.js";
import { type ErrorDetail, signErrorDetail } from "../../protocol/jose/error-detail.js";
import { EnvelopeError } from "../../protocol/jose/errors.js";
import type { RequestPayload } from "../../protocol/jose/messages.js";
import { ReplayGuard } from "../../protocol/jose/replay-guard.js";
import { signResponse } from "../../protocol/jose/sign-response.js";
import { verifyRequest } from "../../protocol/jose/verify-request.js";
import { importX25519PrivateKey } from "../../protocol/jose/x25519.js";
import { simPolicy, type TestParty } from "./setup.js";

interface Enclave {
  keys: EnclaveKeys;
  signingKey: CryptoKey;
  x25519: CryptoKey;
  log: AuditLog;
}

export const RESULT_CSV = "campaign,buyers\nspring,120\nsummer,75\n";
/** The same result as the enclave writes JSON: BIGINT counts as text, as DuckDB hands them over. */
export const RESULT_JSON = JSON.stringify({
  columns: [
    { name: "campaign", type: "VARCHAR" },
    { name: "buyers", type: "BIGINT" },
  ],
  rows: [
    ["spring", "120"],
    ["summer", "75"],
  ],
});

export class FakeHost {
  readonly requests: string[] = [];
  readonly entries: string[] = [];
  readonly blobs = new Map<string, Uint8Array>();
  readonly results = new Map<string, Uint8Array>();
  readonly guard = new ReplayGuard();
  /** Sign evidence with this (untrusted) platform instead. */
  evidencePlatform: SimPlatform | undefined;
  /** Sign responses with this key instead of the attested one. */
  rogueKey: CryptoKey | undefined;
  /** Put this head in responses instead of the real one (a rollback). */
  headOverride: AuditHead | undefined;
  /** Answer as if to another request (a host swapping responses). */
  wrongInReplyTo = false;
  /** Store another result file (encrypted to the same recipient) than the one the digest covers. */
  corruptResult = false;
  /** Give receipts a parameter key other than the one the signed digest was made with. */
  wrongParamsKey = false;
  /** Answer every grant with the first grant's (signed) ingest answer: a replay under another nonce. */
  replayIngest = false;
  /** Send another quality report (encrypted to the owner, as anyone can) than the one the answer signs. */
  swapQuality = false;
  #firstIngest: { response: string; quality: string } | undefined;
  /**
   * Refuse queries as the enclave would: 400 with this code, a fixed message and this detail sealed
   * to the requester (signed with `rogueKey` if set, answering another nonce if `wrongInReplyTo`).
   */
  refuseQuery: ErrorDetail | undefined;
  /** Relay this code with `refuseQuery`'s detail instead of the detail's own. */
  refuseQueryCode: string | undefined;
  /** Signed responses by result id (GET /results/:id). */
  readonly responses = new Map<string, string>();
  enclave!: Enclave;
  url = "";
  #server!: Server;
  #digest = "";
  #results = 0;

  private constructor(
    readonly platform: SimPlatform,
    readonly contract: Contract,
  ) {}

  static async start(platform: SimPlatform, contract: Contract): Promise<FakeHost> {
    const h = new FakeHost(platform, contract);
    h.#digest = (await contractDigest(contract)).hex;
    await h.restartEnclave();
    await h.#append("contract-accepted", { contract: h.#digest });
    h.#server = createServer((req, res) => {
      h.#handle(req, res).catch((e) => h.#fail(res, e));
    });
    await new Promise<void>((ok) => h.#server.listen(0, "127.0.0.1", ok));
    h.url = `http://127.0.0.1:${(h.#server.address() as AddressInfo).port}`;
    return h;
  }

  close(): Promise<void> {
    return new Promise((ok) => this.#server.close(() => ok()));
  }

  /** A client of `party` on this host, trusting the platform it attests on (fresh state unless `o` says). */
  openClient(party: TestParty, o: Partial<ClientOptions> = {}): Promise<CleanroomClient> {
    return CleanroomClient.open({
      host: new HostClient(this.url),
      store: new MemoryStateStore(),
      policy: simPolicy(this.platform),
      contract: this.contract,
      keys: party.keys,
      ...o,
    });
  }

  /**
   * A new enclave instance: new keys, the audit log continuing from the stored head, its first
   * entry carrying evidence from `platform` (default the host's own) over the new keys.
   */
  async restartEnclave(platform: SimPlatform = this.platform): Promise<void> {
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const identity = generateIdentity();
    const keys: EnclaveKeys = {
      signingKey: { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y! },
      ageRecipient: await identityToRecipient(identity),
    };
    const { log, started } = await AuditLog.start({
      signingKey: pair.privateKey,
      keys,
      attest: (reportData) => simSnpEvidence(platform.amd, { reportData, measurement: platform.measurement }),
      ...(this.enclave ? { head: this.enclave.log.head } : {}),
    });
    this.entries.push(started.jws);
    this.enclave = {
      keys,
      signingKey: pair.privateKey,
      x25519: await importX25519PrivateKey(decodeIdentity(identity)),
      log,
    };
  }

  get head(): AuditHead {
    return this.enclave.log.head;
  }

  async #append(...args: Parameters<AuditLog["append"]>): Promise<AuditHead> {
    const a = await this.enclave.log.append(...args);
    this.entries.push(a.jws);
    return a.head;
  }

  #respond(body: Record<string, unknown>, inReplyTo?: string): Promise<string> {
    const b = this.headOverride ? { ...body, head: this.headOverride } : body;
    const replyTo = inReplyTo && this.wrongInReplyTo ? "0".repeat(32) : inReplyTo;
    return signResponse(b, this.rogueKey ?? this.enclave.signingKey, replyTo ? { inReplyTo: replyTo } : {});
  }

  async #request<K extends "grant" | "query">(jwe: unknown, kind: K): Promise<RequestPayload<K>> {
    if (typeof jwe !== "string") throw new EnvelopeError("no envelope");
    const { jws } = await decryptAtEnclave(jwe, this.enclave.x25519);
    if (!jws) throw new EnvelopeError("no nested request");
    return verifyRequest<K>(jws, this.contract, this.guard, {
      expectedKind: kind,
      contractDigest: this.#digest,
      audience: toHex(await keysDigest(this.enclave.keys)),
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname.replace(/^\/api\/v1/, "");
    this.requests.push(`${req.method} ${path}`);
    const body = await read(req);
    const blob = /^\/blobs\/([0-9a-f]{64})$/.exec(path);
    if (req.method === "GET" && path === "/evidence") {
      const nonce = fromHex(url.searchParams.get("nonce") ?? "");
      const keys = this.enclave.keys;
      const reportData = await bindingData({ keys, contractDigest: this.#digest, nonce });
      const p = this.evidencePlatform ?? this.platform;
      const ev = await simSnpEvidence(p.amd, { reportData, measurement: p.measurement });
      return json(res, 200, bundleEvidence(ev, keys, this.#digest, nonce));
    }
    if (req.method === "HEAD" && blob) return end(res, this.blobs.has(blob[1]!) ? 200 : 404);
    if (req.method === "PUT" && blob) {
      if (toHex(await sha256(body)) !== blob[1]) return json(res, 400, err("ERR_DIGEST", "digest mismatch"));
      this.blobs.set(blob[1]!, body);
      return json(res, 201, { digest: blob[1] });
    }
    // Resumable uploads, whole requests only: the real store's resumption is tested in test/host.
    const upload = /^\/blobs\/([0-9a-f]{64})\/upload$/.exec(path);
    if (req.method === "GET" && upload) {
      const held = this.blobs.get(upload[1]!);
      return json(res, 200, { offset: held?.length ?? 0, length: held?.length ?? null, complete: !!held });
    }
    if (req.method === "PATCH" && blob) {
      if (url.searchParams.get("offset") !== "0") return json(res, 409, err("ERR_UPLOAD_OFFSET", "offset"));
      if (toHex(await sha256(body)) !== blob[1]) return json(res, 400, err("ERR_DIGEST_MISMATCH", "digest"));
      this.blobs.set(blob[1]!, body);
      return json(res, 200, { offset: body.length, length: body.length, complete: true });
    }
    if (req.method === "POST" && path === "/grants") {
      const { jwe, dataset, digest } = JSON.parse(new TextDecoder().decode(body));
      const r = await this.#request(jwe, "grant");
      const stored = this.blobs.get(digest);
      if (!stored || r.body.ciphertextDigest !== digest || r.body.dataset !== dataset) {
        return json(res, 404, err("ERR_NO_BLOB", "no such blob"));
      }
      const { header } = parseHeader(stored.subarray(0, Math.min(stored.length, 65536)));
      if (!(await verifyHeaderMac(base64url.decode(r.body.fileKey!), header.macInput, header.mac))) {
        return json(res, 400, err("ERR_GRANT", "file key does not open the file"));
      }
      const g = { dataset, ciphertextDigest: digest };
      const head1 = await this.#append("grant", { ...g, party: r.party });
      const grantResponse = await this.#respond({ ...g, head: head1 }, r.nonce);
      const head2 = await this.#append("dataset-loaded", { ...g, rows: 3 });
      const owner = this.contract.parties.find((p) => p.id === r.party)!;
      const quality = await encryptBytes(new TextEncoder().encode('{"rowsAccepted":3}'), [
        owner.ageRecipient,
      ]);
      const qualityDigest = await ciphertextDigest(quality);
      let ingest = {
        response: await this.#respond(
          { ...g, rows: 3, version: 1, mode: "new", totalRows: 3, qualityDigest, head: head2 },
          r.nonce,
        ),
        quality: Buffer.from(quality).toString("base64"),
      };
      this.#firstIngest ??= ingest;
      if (this.replayIngest) ingest = this.#firstIngest;
      if (this.swapQuality) {
        const other = await encryptBytes(new TextEncoder().encode('{"rowsAccepted":0}'), [
          owner.ageRecipient,
        ]);
        ingest = { ...ingest, quality: Buffer.from(other).toString("base64") };
      }
      return json(res, 200, { grant: { response: grantResponse }, ingest });
    }
    if (req.method === "POST" && path === "/queries") {
      const { jwe } = JSON.parse(new TextDecoder().decode(body));
      const r = await this.#request(jwe, "query");
      if (this.refuseQuery) {
        const plaintext = await signErrorDetail(this.refuseQuery, this.rogueKey ?? this.enclave.signingKey, {
          inReplyTo: this.wrongInReplyTo ? "0".repeat(32) : r.nonce,
        });
        const to = this.contract.parties.find((p) => p.id === r.party)!.ageRecipient;
        const detail = Buffer.from(await encryptBytes(plaintext, [to])).toString("base64");
        const code = this.refuseQueryCode ?? this.refuseQuery.code;
        return json(res, 400, { error: { code, message: "refused", detail } });
      }
      const q = this.contract.queries.find((x) => x.id === r.body.queryId);
      if (!q) return json(res, 400, err("ERR_QUERY_REFUSED", "unknown query"));
      const lh = r.body.auditHead;
      if (lh && lh.seq > this.head.seq) return json(res, 409, err("ERR_LEDGER", "ledger behind"));
      const text = r.body.resultFormat === "json" ? RESULT_JSON : RESULT_CSV;
      const data = new TextEncoder().encode(text);
      const id = `r${++this.#results}`;
      const sent = this.corruptResult ? new TextEncoder().encode(text.replace("120", "121")) : data;
      const paramsKey = newParamsKey();
      const resultDigests: Record<string, string> = {};
      const receipts: Record<string, string> = {};
      const parties = q.recipients.includes(r.party) ? q.recipients : [...q.recipients, r.party];
      for (const p of parties) {
        const party = this.contract.parties.find((x) => x.id === p)!;
        const recipient = q.recipients.includes(p);
        if (recipient) {
          const sealed = await encryptBytes(data, [party.ageRecipient]);
          resultDigests[p] = await ciphertextDigest(sealed);
          // A corrupting host stores a file of its own making, encrypted to the same recipient.
          this.results.set(
            `${id}/${p}`,
            this.corruptResult ? await encryptBytes(sent, [party.ageRecipient]) : sealed,
          );
        }
        const receipt = encodeReceipt({
          version: 1,
          query: q.id,
          requester: r.party,
          party: p,
          format: r.body.resultFormat,
          paramsKey: this.wrongParamsKey ? newParamsKey() : paramsKey,
          ...(recipient ? { rows: 2 } : {}),
        });
        receipts[p] = Buffer.from(await encryptBytes(receipt, [party.ageRecipient])).toString("base64");
      }
      const digest = await paramsDigest(paramsKey, r.body.params);
      const head = await this.#append("query-run", {
        query: q.id,
        requester: r.party,
        paramsDigest: digest,
        resultDigests,
        epsilon: 0,
      });
      const response = await this.#respond(
        {
          queryId: q.id,
          requester: r.party,
          format: r.body.resultFormat,
          paramsDigest: digest,
          resultDigests,
          receipts,
          epsilon: 0,
          head,
        },
        r.nonce,
      );
      this.responses.set(id, response);
      return json(res, 200, { id, response, recipients: q.recipients });
    }
    if (req.method === "GET" && path === "/results") {
      // The runs with a result for the party, newest first (host/routes-results.ts).
      const party = url.searchParams.get("party") ?? "";
      const results = [...this.responses]
        .filter(([id]) => this.results.has(`${id}/${party}`))
        .reverse()
        .map(([id, response]) => ({ id, response, recipients: [party], created: new Date(0).toISOString() }));
      return json(res, 200, { results });
    }
    const meta = /^\/results\/([A-Za-z0-9_-]+)$/.exec(path);
    if (req.method === "GET" && meta) {
      const response = this.responses.get(meta[1]!);
      if (!response) return json(res, 404, err("ERR_NOT_FOUND", "no such result"));
      const recipients = [...this.results.keys()]
        .filter((k) => k.startsWith(`${meta[1]}/`))
        .map((k) => k.slice(meta[1]!.length + 1));
      return json(res, 200, { id: meta[1], response, recipients: recipients.sort() });
    }
    const result = /^\/results\/([A-Za-z0-9_-]+)\/([a-z][a-z0-9_-]*)$/.exec(path);
    if (req.method === "GET" && result) {
      const bytes = this.results.get(`${result[1]}/${result[2]}`);
      if (!bytes) return json(res, 404, err("ERR_NOT_FOUND", "no such result"));
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return void res.end(bytes);
    }
    if (req.method === "GET" && path === "/audit")
      return json(res, 200, { entries: this.entries, head: this.head });
    return json(res, 404, err("ERR_NOT_FOUND", "no such route"));
  }

  #fail(res: ServerResponse, e: unknown): void {
    if (isCleanroomError(e)) json(res, 400, err(e.code, e.message));
    else json(res, 500, err("ERR_INTERNAL", "internal error"));
  }
}

const err = (code: string, message: string) => ({ error: { code, message } });

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function end(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

async function read(req: IncomingMessage): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return new Uint8Array(Buffer.concat(parts));
}
