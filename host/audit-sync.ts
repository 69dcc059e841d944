/**
 * Keeps the host's copy of the audit log up to date: after each mutating relay (and before
 * serving the log) it asks the enclave for entries after its stored head and appends them.
 * Syncs are serialised so two relays finishing together never append the same entries twice.
 * A restarted enclave (its chain shorter than the stored one, no contract yet) is first handed
 * the stored log (POST /v1/audit/restore), so the chain, run counts and budgets continue.
 */
import type { FastifyBaseLogger } from "fastify";
import type { EnclaveClient } from "./enclave-client.js";
import { expectOk } from "./enclave-client.js";
import { EnclaveProtocolError } from "./errors.js";
import type { AuditStore } from "./store.js";

/** Pages fetched per sync at most, in case the enclave answers a page at a time. */
const MAX_PAGES = 64;

export class AuditSync {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly enclave: EnclaveClient,
    private readonly store: AuditStore,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Fetch and append new entries; failures are logged, never thrown (the relay already happened). */
  sync(): Promise<void> {
    const run = this.queue.then(() => this.fetchNew());
    this.queue = run.catch(() => undefined);
    return run.catch((e: unknown) => {
      this.log.warn({ errCode: (e as { code?: string }).code }, "audit sync failed");
    });
  }

  private async fetchNew(): Promise<void> {
    for (let page = 0; page < MAX_PAGES; page++) {
      const before = this.store.head.seq;
      const body = expectOk(await this.enclave.get("/v1/audit", { from: String(before + 1) }, 0));
      const { entries, head } = body as { entries?: unknown; head?: { seq?: unknown } };
      if (!Array.isArray(entries) || !entries.every((e) => typeof e === "string")) {
        throw new EnclaveProtocolError("audit answer malformed");
      }
      const added = await this.store.append(entries as string[]);
      const enclaveSeq = typeof head?.seq === "number" ? head.seq : this.store.head.seq;
      if (enclaveSeq < before) {
        if (await this.restore()) continue;
        // A restarted enclave that already took a contract: its new chain is not ours to merge.
        this.log.warn({ storedSeq: before, enclaveSeq }, "enclave audit head behind the stored log");
        return;
      }
      if (added === 0 || this.store.head.seq >= enclaveSeq) return;
    }
  }

  /** Hands the stored log to an enclave that holds no contract yet; false if it already does. */
  private async restore(): Promise<boolean> {
    const health = expectOk(await this.enclave.get("/v1/health", undefined, 0)) as {
      contractDigest?: unknown;
    };
    if (health.contractDigest !== null) return false;
    expectOk(await this.enclave.postJson("/v1/audit/restore", { entries: this.store.list().entries }));
    this.log.info({ storedSeq: this.store.head.seq }, "audit log restored to a restarted enclave");
    return true;
  }
}
