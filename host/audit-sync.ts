/**
 * Keeps the host's copy of the audit log up to date: after each mutating relay (and before
 * serving the log) it asks the enclave for entries after its stored head and appends them; the
 * store refuses entries that do not continue its copy (store.ts). Syncs are serialised so two
 * relays finishing together never append the same entries twice.
 *
 * A restarted enclave (its chain behind or forked from the stored one, no contract yet) is first
 * handed the stored log (POST /v1/audit/restore), which it verifies entry by entry, so the chain,
 * run counts and budgets continue. When that fails, the enclave would start over with budgets
 * and run counts reset: the host then relays no contract to it (`requireRestored`) until a
 * restore succeeds, and logs only the error code.
 */
import type { FastifyBaseLogger } from "fastify";
import { isAuditHead } from "../protocol/audit/entry.js";
import type { EnclaveClient } from "./enclave-client.js";
import { expectOk } from "./enclave-client.js";
import { AuditRestoreFailedError, EnclaveProtocolError, EnclaveRejectedError } from "./errors.js";
import type { GuardHistoryStore } from "./guard-history.js";
import type { AuditStore } from "./store.js";

/** Pages fetched per sync at most, in case the enclave answers a page at a time. */
const MAX_PAGES = 64;

export class AuditSync {
  private queue: Promise<void> = Promise.resolve();
  /** Set when the last restore of a restarted enclave failed; cleared once its chain holds the stored log. */
  private restoreFailed = false;

  constructor(
    private readonly enclave: EnclaveClient,
    private readonly store: AuditStore,
    private readonly log: FastifyBaseLogger,
    private readonly guard: GuardHistoryStore,
  ) {}

  /** Fetch and append new entries; failures are logged, never thrown (the relay already happened). */
  sync(): Promise<void> {
    const run = this.queue.then(() => this.fetchNew());
    this.queue = run.catch(() => undefined);
    return run.catch((e: unknown) => {
      this.log.warn({ errCode: (e as { code?: string }).code }, "audit sync failed");
    });
  }

  /**
   * Before a contract is relayed: sync (restoring a restarted enclave), then refuse with
   * AuditRestoreFailedError while the enclave has not taken the stored log.
   */
  async requireRestored(): Promise<void> {
    await this.sync();
    if (this.restoreFailed) throw new AuditRestoreFailedError();
  }

  private async fetchNew(): Promise<void> {
    for (let page = 0; page < MAX_PAGES; page++) {
      const before = this.store.head.seq;
      const body = expectOk(await this.enclave.get("/v1/audit", { from: String(before + 1) }, 0));
      const { entries, head } = body as { entries?: unknown; head?: unknown };
      if (!Array.isArray(entries) || !entries.every((e) => typeof e === "string") || !isAuditHead(head)) {
        throw new EnclaveProtocolError("audit answer malformed");
      }
      // Behind the stored log, or at a point of it with another entry: a new instance.
      if (head.seq <= before && !this.store.holds(head)) {
        if (await this.restore()) continue;
        // A restarted enclave that already took a contract: its new chain is not ours to merge.
        this.log.warn(
          { storedSeq: before, enclaveSeq: head.seq },
          "enclave audit head behind the stored log",
        );
        return;
      }
      const added = await this.store.append(entries as string[]);
      // The enclave's chain holds the stored log: whatever restore failed before is behind us.
      this.restoreFailed = false;
      if (added === 0 || this.store.head.seq >= head.seq) return;
    }
  }

  /** Hands the stored log to an enclave that holds no contract yet; false if it already does. */
  private async restore(): Promise<boolean> {
    const health = expectOk(await this.enclave.get("/v1/health", undefined, 0)) as {
      contractDigest?: unknown;
    };
    if (health.contractDigest !== null) return false;
    try {
      // With the sealed guard histories, so guarded queries continue rather than freeze.
      const guard = await this.guard.all();
      expectOk(
        await this.enclave.postJson("/v1/audit/restore", { entries: this.store.list().entries, guard }),
      );
    } catch (e) {
      this.restoreFailed = true;
      const enclaveCode = e instanceof EnclaveRejectedError ? e.enclaveCode : undefined;
      this.log.error({ errCode: (e as { code?: string }).code, enclaveCode }, "audit restore failed");
      throw e;
    }
    this.restoreFailed = false;
    this.log.info({ storedSeq: this.store.head.seq }, "audit log restored to a restarted enclave");
    return true;
  }
}
