/**
 * A stand-in for the enclave's §7 HTTP API, for host tests only. The host is a relay, so what
 * matters is exactly which bytes reach the enclave: every request is recorded verbatim. Answers
 * have the §7 shapes with placeholder JWS strings (the host never verifies them).
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Buffer;
}

export interface FakeReply {
  status: number;
  body: unknown;
}

const b64u = (s: string) => Buffer.from(s).toString("base64url");

/** A compact-JWS-shaped string with the given JSON payload (the signature is a placeholder). */
export function fakeJws(payload: unknown, typ = "cleanroom-response+jws"): string {
  return `${b64u(JSON.stringify({ alg: "ES256", typ }))}.${b64u(JSON.stringify(payload))}.${b64u("sig")}`;
}

/** A compact-JWE-shaped string whose ciphertext segment carries `marker` (the host cannot read it anyway). */
export function fakeJwe(marker: string): string {
  return `${b64u(JSON.stringify({ alg: "ECDH-ES", enc: "A256GCM" }))}..${b64u("iv")}.${b64u(marker)}.${b64u("tag")}`;
}

export class FakeEnclave {
  readonly received: Received[] = [];
  readonly audit: string[] = [];
  private prev = "0".repeat(64);
  contract: unknown = null;
  /** How POST /v1/requests answers; the default treats every request as a grant. */
  onRequest: (jwe: string) => FakeReply = () => ({
    status: 200,
    body: { response: this.respond({ dataset: "sales", kind: "grant" }) },
  });
  onIngest: (dataset: string, digest: string, bytes: Buffer) => FakeReply = (dataset, digest, bytes) => {
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== digest)
      return { status: 400, body: { error: { code: "ERR_DIGEST_MISMATCH", message: "digest" } } };
    return {
      status: 200,
      body: {
        response: this.respond({ dataset, ciphertextDigest: digest, rows: 3 }),
        quality: "cXVhbGl0eQ==",
      },
    };
  };
  /**
   * How POST /v1/audit/restore answers; the default takes the log and continues it with a new
   * "enclave-started" entry, as the enclave does once it has verified it.
   */
  onRestore: (entries: string[]) => FakeReply = (entries) => {
    this.audit.splice(0, this.audit.length, ...entries);
    this.prev = entries.length
      ? createHash("sha256")
          .update(Buffer.from(entries.at(-1)!.split(".")[1]!, "base64url"))
          .digest("hex")
      : "0".repeat(64);
    this.appendAudit("enclave-started", { signingKey: "k2", keysDigest: "0".repeat(64) });
    return { status: 200, body: { head: this.head } };
  };
  private server = http.createServer((req, res) => this.handle(req, res));

  static async start(): Promise<FakeEnclave> {
    const fake = new FakeEnclave();
    await new Promise<void>((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get head(): { seq: number; hash: string } {
    return { seq: this.audit.length, hash: this.prev };
  }

  /** Append an audit entry the way the enclave would (hash chain over the payload bytes). */
  appendAudit(kind: string, data: Record<string, unknown>): void {
    const entry = {
      seq: this.audit.length + 1,
      prev: this.prev,
      time: new Date(0).toISOString(),
      kind,
      data,
    };
    const payload = JSON.stringify(entry);
    this.audit.push(
      `${b64u(JSON.stringify({ alg: "ES256", typ: "cleanroom-audit+jws", kid: "k" }))}.${b64u(payload)}.${b64u("sig")}`,
    );
    this.prev = createHash("sha256").update(payload).digest("hex");
  }

  /** A restarted instance: no contract, and a chain of its own first entry only. */
  restart(): void {
    this.contract = null;
    this.audit.length = 0;
    this.prev = "0".repeat(64);
    this.appendAudit("enclave-started", { signingKey: "k-new", keysDigest: "0".repeat(64) });
  }

  respond(body: Record<string, unknown>): string {
    this.appendAudit("event", { n: this.audit.length });
    return fakeJws({ iat: 1, body: { ...body, head: this.head } });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://enclave");
      const body = Buffer.concat(chunks);
      this.received.push({ method: req.method ?? "", path: url.pathname, query: url.searchParams, body });
      const reply = this.route(req.method ?? "", url, body);
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(JSON.stringify(reply.body));
    });
  }

  private route(method: string, url: URL, body: Buffer): FakeReply {
    const ingest = /^\/v1\/datasets\/([a-z][a-z0-9_]*)\/ingest$/.exec(url.pathname);
    const key = `${method} ${ingest ? "ingest" : url.pathname}`;
    switch (key) {
      case "GET /v1/health":
        return {
          status: 200,
          body: {
            ok: true,
            platform: "sev-snp",
            simulated: true,
            contractDigest: this.contract ? "d".repeat(64) : null,
            head: this.head,
          },
        };
      case "GET /v1/evidence":
        return {
          status: 200,
          body: {
            platform: "sev-snp",
            evidence: "AAAA",
            certificates: { vcek: "AA==" },
            keys: { signingKey: { kty: "EC", crv: "P-256", x: "x", y: "y" }, ageRecipient: "age1x" },
            contractDigest: null,
            nonce: url.searchParams.get("nonce"),
          },
        };
      case "GET /v1/contract":
        return this.contract
          ? { status: 200, body: this.contract }
          : { status: 404, body: { error: { code: "ERR_NO_CONTRACT", message: "no contract" } } };
      case "POST /v1/contract": {
        const parsed = JSON.parse(body.toString("utf8")) as { contract: unknown; approvals: string[] };
        this.contract = { ...parsed, digest: "d".repeat(64) };
        return { status: 200, body: { response: this.respond({ digest: "d".repeat(64) }) } };
      }
      case "POST /v1/requests":
        return this.onRequest((JSON.parse(body.toString("utf8")) as { jwe: string }).jwe);
      case "POST ingest":
        return this.onIngest(ingest![1]!, url.searchParams.get("digest") ?? "", body);
      case "POST /v1/audit/restore":
        return this.onRestore((JSON.parse(body.toString("utf8")) as { entries: string[] }).entries);
      case "GET /v1/audit": {
        const from = Number(url.searchParams.get("from") ?? "1");
        return { status: 200, body: { entries: this.audit.slice(Math.max(0, from - 1)), head: this.head } };
      }
      default:
        return { status: 404, body: { error: { code: "ERR_NOT_FOUND", message: "no such route" } } };
    }
  }
}
