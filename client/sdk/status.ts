/**
 * The state of a clean room as one party can establish it itself: fresh attestation (platform,
 * measurement), the contract the enclave holds and every party's approval of it (verified with
 * the contract's keys), and from the verified audit chain: which datasets the running instance
 * loaded, how many runs each query has left, how much privacy budget each party has left, and
 * since when the running instance is up (the time of its own signed "enclave-started" entry).
 * Nothing here comes from the host unverified except the order in which it hands things over.
 */
import { calculateJwkThumbprint } from "jose";
import type { AuditEntry, AuditHead } from "../../protocol/audit/entry.js";
import { verifyApprovals } from "../../protocol/contract/sign.js";
import { type Contract, partyBudget } from "../../protocol/contract/types.js";
import { validateContract } from "../../protocol/contract/validate.js";
import { auditVerify } from "./audit.js";
import type { CleanroomClient } from "./client.js";
import { contractDigestHex } from "./contract.js";
import { HostResponseError } from "./errors.js";

export interface DatasetStatus {
  id: string;
  owner: string;
  loaded: boolean;
  /** Rows in the table (after the last load, appended ones included). */
  rows?: number;
  /** The file of the last load. */
  ciphertextDigest?: string;
  /** The dataset's version and how the last load made it, when the audit entry carries them. */
  version?: number;
  mode?: string;
  loadedAt?: string;
}

export interface QueryStatus {
  id: string;
  runs: number;
  maxRuns: number | null;
  runsLeft: number | null;
}

export interface BudgetStatus {
  party: string;
  /** Epsilon each party may spend on this contract (the smallest budget of its DP queries). */
  budget: number;
  /** Epsilon charged so far, from the debits on the chain (micro-epsilon precision). */
  spent: number;
  left: number;
}

export interface CleanroomStatus {
  contract: { id: string; digest: string };
  enclave: {
    platform: string;
    simulated: boolean;
    /** SEV-SNP launch measurement, when the platform is SEV-SNP. */
    measurement?: string;
    /** Nitro PCRs, when the platform is Nitro. */
    pcrs?: Record<string, string>;
    /** The running instance's "enclave-started" time, when the chain holds it. */
    startedAt?: string;
    uptimeSeconds?: number;
  };
  approvals: { party: string; approvedAt: string }[];
  datasets: DatasetStatus[];
  queries: QueryStatus[];
  budgets: BudgetStatus[];
  audit: { head: AuditHead; entries: number };
}

const MICROS = 1_000_000;

/** A budget in micro-epsilon, rounded down as the enclave does (from its shortest decimal text). */
function budgetMicros(budget: number): number {
  const [int = "0", frac = ""] = budget.toFixed(12).split(".");
  return Number(int) * MICROS + Number(frac.slice(0, 6).padEnd(6, "0"));
}

export async function cleanroomStatus(client: CleanroomClient, now = new Date()): Promise<CleanroomStatus> {
  const fresh = await client.reattest();
  const held = await client.host.getJson<{ contract?: unknown; approvals?: unknown; digest?: unknown }>(
    "/contract",
  );
  let contract: Contract;
  try {
    contract = validateContract(held?.contract);
  } catch (cause) {
    throw new HostResponseError("the host's contract answer is not a contract", { cause });
  }
  // The attestation just verified binds our digest: the document relayed must be that contract.
  if ((await contractDigestHex(contract)) !== client.contractDigest) {
    throw new HostResponseError("the host relayed another contract than the attested one");
  }
  const approvals = Array.isArray(held.approvals) ? held.approvals.filter((a) => typeof a === "string") : [];
  const verified = await verifyApprovals(contract, approvals);

  const log = await auditVerify(client);
  const entries = log.entries;
  const thumbprint = await calculateJwkThumbprint(fresh.keys.signingKey, "sha256");
  let start = -1;
  let started: AuditEntry | undefined;
  let accepted = -1;
  for (const [i, e] of entries.entries()) {
    if (e.kind === "enclave-started" && (e.data as { signingKey?: string }).signingKey === thumbprint) {
      start = i;
      started = e;
    } else if (
      e.kind === "contract-accepted" &&
      (e.data as { contract?: string }).contract === client.contractDigest
    ) {
      accepted = i;
    }
  }
  // Loads of the running instance after it accepted this contract (a restart empties the tables).
  const loads = new Map<string, AuditEntry>();
  if (start >= 0 && accepted > start) {
    for (const e of entries.slice(accepted + 1)) {
      if (e.kind === "dataset-loaded") loads.set((e.data as { dataset: string }).dataset, e);
    }
  }
  // Runs and debits count from the first acceptance of this contract on: they survive restarts.
  const firstAccepted = entries.findIndex(
    (e) =>
      e.kind === "contract-accepted" && (e.data as { contract?: string }).contract === client.contractDigest,
  );
  const runs = new Map<string, number>();
  const spent = new Map<string, number>();
  for (const e of firstAccepted < 0 ? [] : entries.slice(firstAccepted + 1)) {
    if (e.kind !== "query-run") continue;
    const d = e.data as AuditEntry<"query-run">["data"];
    runs.set(d.query, (runs.get(d.query) ?? 0) + 1);
    for (const debit of d.debits ?? []) spent.set(debit.party, debit.total);
  }

  const budget = partyBudget(contract);
  const claims = fresh.result.claims;
  return {
    contract: { id: contract.id, digest: client.contractDigest },
    enclave: {
      platform: fresh.result.platform,
      simulated: fresh.result.simulated,
      ...(typeof claims.measurement === "string" ? { measurement: claims.measurement } : {}),
      ...(claims.pcrs && typeof claims.pcrs === "object"
        ? { pcrs: claims.pcrs as Record<string, string> }
        : {}),
      ...(started
        ? {
            startedAt: started.time,
            uptimeSeconds: Math.max(0, Math.floor((now.getTime() - Date.parse(started.time)) / 1000)),
          }
        : {}),
    },
    approvals: verified.approvals.map((a) => ({
      party: a.party,
      approvedAt: new Date(a.iat * 1000).toISOString(),
    })),
    datasets: contract.datasets.map((d) => {
      const e = loads.get(d.id);
      if (!e) return { id: d.id, owner: d.owner, loaded: false };
      const data = e.data as AuditEntry<"dataset-loaded">["data"];
      return {
        id: d.id,
        owner: d.owner,
        loaded: true,
        rows: data.totalRows ?? data.rows,
        ciphertextDigest: data.ciphertextDigest,
        ...(data.version !== undefined ? { version: data.version, mode: data.mode } : {}),
        loadedAt: e.time,
      };
    }),
    queries: contract.queries.map((q) => {
      const n = runs.get(q.id) ?? 0;
      const max = q.policy.maxRuns ?? null;
      return { id: q.id, runs: n, maxRuns: max, runsLeft: max === null ? null : Math.max(0, max - n) };
    }),
    budgets:
      budget > 0
        ? contract.parties.map((p) => {
            const used = spent.get(p.id) ?? 0;
            return {
              party: p.id,
              budget,
              spent: used / MICROS,
              left: Math.max(0, budgetMicros(budget) - used) / MICROS,
            };
          })
        : [],
    audit: { head: log.head, entries: entries.length },
  };
}
