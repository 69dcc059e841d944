/**
 * The two-party partner flow against a running host, through the partner SDK only: keys,
 * contract approvals, attestation, encrypted uploads, grants, the four use-case queries,
 * decrypted results and a verified audit log. The demo prints it; the end-to-end test checks it.
 */

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { certificatesFromInput } from "../../attestation/pem.js";
import { SIM_FILES, type SimExpected } from "../../attestation/sim/platform.js";
import {
  approveContract,
  auditVerify,
  CleanroomClient,
  decryptAgeNode,
  fetchResult,
  generatePartyKeys,
  grant,
  HostClient,
  loadPartyKeys,
  MemoryStateStore,
  type PartyKeys,
  query,
  ResultDigestError,
  submitContract,
  uploadFile,
} from "../../client/node/index.js";
import type { Contract } from "../../protocol/contract/types.js";
import type { ParamValue } from "../../protocol/jose/messages.js";
import { exposures, purchases, useCaseContract, useCaseRows } from "./usecases.js";

export interface FlowOptions {
  url: string;
  simDir: string;
  /** Working directory for the parties' plaintext files (never sent anywhere). */
  workDir: string;
  identities: number;
  seed?: number;
  /** Replace the generated CSV text of a dataset (tests add canary rows this way). */
  data?: (which: "purchases" | "exposures") => Iterable<string>;
  log?: (line: string) => void;
}

export interface RunSpec {
  queryId: string;
  runner: PartyId;
  params: Record<string, ParamValue>;
}

/** The demo's questions: which party asks what. */
export const DEMO_RUNS: RunSpec[] = [
  { queryId: "closed-loop", runner: "advertiser", params: { campaign: "spring24" } },
  { queryId: "audience-overlap", runner: "publisher", params: {} },
  { queryId: "last-touch", runner: "advertiser", params: { start: "2024-04-01", end: "2024-05-01" } },
  { queryId: "audience-insight", runner: "advertiser", params: { category: "shoes" } },
];

export interface FlowResult {
  contract: Contract;
  contractDigest: string;
  uploads: { dataset: string; digest: string; rows: number }[];
  /** `epsilon`: what a differentially private (custom rule) run charged; 0 for exact aggregations. */
  results: {
    run: RunSpec;
    columns: string[];
    rows: unknown[][];
    epsilon: number;
    /** Recipients that decrypted this result after checking it against the enclave's signed digest. */
    recipientsVerified: string[];
  }[];
  auditEntries: number;
  simulated: boolean;
  measurement: string;
}

/** What a partner pins for the simulated image: its measurement and the simulated roots. */
export function simPolicy(simDir: string): EvidencePolicy {
  const expected = JSON.parse(readFileSync(join(simDir, SIM_FILES.expected), "utf8")) as SimExpected;
  return {
    measurements: [expected.measurement],
    pcrs: expected.pcrs,
    trustedSimRoots: certificatesFromInput(readFileSync(join(simDir, SIM_FILES.roots), "utf8")),
  };
}

export type PartyId = "advertiser" | "publisher";
export const PARTIES: readonly PartyId[] = ["advertiser", "publisher"];

export interface Collaboration {
  contract: Contract;
  contractDigest: string;
  clients: Record<PartyId, CleanroomClient>;
}

/** Keys for both parties, the demo contract, both approvals, and the contract submitted. */
export async function startCollaboration(url: string, simDir: string): Promise<Collaboration> {
  const policy = simPolicy(simDir);
  const keys = Object.fromEntries(
    await Promise.all(
      PARTIES.map(async (id) => [id, await loadPartyKeys(await generatePartyKeys())] as const),
    ),
  ) as Record<PartyId, PartyKeys>;
  const contract = useCaseContract(
    PARTIES.map((id) => ({
      id,
      name: id === "advertiser" ? "Acme Shoes (advertiser)" : "Daily News (publisher)",
      signingKey: keys[id].signingKey,
      ageRecipient: keys[id].ageRecipient,
    })),
  );
  const approvals = await Promise.all(PARTIES.map((id) => approveContract(contract, keys[id])));
  const submitted = await submitContract(new HostClient(url), contract, approvals, policy);
  const open = (id: PartyId) =>
    CleanroomClient.open({
      host: new HostClient(url),
      store: new MemoryStateStore(),
      policy,
      contract,
      keys: keys[id],
      decrypt: decryptAgeNode,
    });
  const [advertiser, publisher] = await Promise.all(PARTIES.map(open));
  return {
    contract,
    contractDigest: submitted.digest,
    clients: { advertiser: advertiser!, publisher: publisher! },
  };
}

/** The owner of each demo dataset and the generator's name for it. */
export const DATASETS = [
  { owner: "advertiser", dataset: purchases, rows: "purchases" },
  { owner: "publisher", dataset: exposures, rows: "exposures" },
] as const;

export async function runPartnerFlow(o: FlowOptions): Promise<FlowResult> {
  const log = o.log ?? (() => {});
  log("1. both parties approve the contract (ES256 over its RFC 8785 digest)");
  const c = await startCollaboration(o.url, o.simDir);
  log(`   contract ${c.contractDigest.slice(0, 16)}… accepted; evidence binds it`);

  log("2. each party verifies the enclave's attestation itself");
  let simulated = false;
  let measurement = "";
  for (const id of PARTIES) {
    const a = await c.clients[id].attestation();
    simulated = a.result.simulated;
    measurement = String(a.result.claims["measurement"] ?? "");
    log(`   ${id}: ${a.result.checks.filter((x) => x.ok).length}/${a.result.checks.length} checks ✓`);
  }

  log("3. each party encrypts its data (age) and uploads ciphertext; then grants the enclave its key");
  const uploads: FlowResult["uploads"] = [];
  for (const { owner, dataset, rows: which } of DATASETS) {
    const file = join(o.workDir, `${dataset.id}.csv`);
    writeFileSync(file, "");
    const rows = o.data?.(which) ?? useCaseRows(which, { identities: o.identities, seed: o.seed ?? 1 });
    for (const chunk of rows) writeFileSync(file, chunk, { flag: "a" });
    const up = await uploadFile(c.clients[owner], file);
    const g = await grant(c.clients[owner], { dataset: dataset.id, ciphertextDigest: up.digest });
    uploads.push({ dataset: dataset.id, digest: up.digest, rows: g.rows ?? 0 });
    log(`   ${owner}: ${dataset.id} ${(up.size / 1e6).toFixed(1)} MB ciphertext, ${g.rows} rows loaded`);
  }

  log("4. approved queries; each recipient checks its encrypted result against the enclave-signed digest");
  log(
    "   (the row count and the parameter key come in a receipt encrypted to each party; answers wait for the release quantum)",
  );
  const results: FlowResult["results"] = [];
  for (const run of DEMO_RUNS) {
    const r = await query(c.clients[run.runner], {
      queryId: run.queryId,
      params: run.params,
      format: "json",
    });
    const data = r.rows as { columns: { name: string }[]; rows: unknown[][] };
    // Every other recipient fetches its own copy from the host and checks it the same way.
    const approved = c.contract.queries.find((q) => q.id === run.queryId)!;
    const recipientsVerified = approved.recipients.includes(run.runner) ? [run.runner] : [];
    for (const p of approved.recipients as PartyId[]) {
      if (p === run.runner) continue;
      const copy = await fetchResult(c.clients[p], r.id);
      if (JSON.stringify(copy.rows) !== JSON.stringify(r.rows))
        throw new ResultDigestError("a recipient received another result");
      recipientsVerified.push(p);
    }
    results.push({
      run,
      columns: data.columns.map((col) => col.name),
      rows: data.rows,
      epsilon: r.response.epsilon,
      recipientsVerified,
    });
  }

  log("5. both parties verify the enclave-signed, hash-chained audit log");
  let auditEntries = 0;
  for (const id of PARTIES) auditEntries = (await auditVerify(c.clients[id])).entries.length;
  return {
    contract: c.contract,
    contractDigest: c.contractDigest,
    uploads,
    results,
    auditEntries,
    simulated,
    measurement,
  };
}
