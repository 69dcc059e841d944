/**
 * Concurrent partner sessions against one host: each session opens its own client, verifies the
 * enclave's evidence with a fresh nonce, uploads its own encrypted file and runs an approved
 * query. A party's sessions share its persistent request counter and send its signed requests
 * one at a time (the enclave refuses a seq lower than one it already accepted), as one party's
 * client would; everything else runs concurrently.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CleanroomClient,
  decryptAgeNode,
  HostClient,
  type MemoryStateStore,
  query,
  uploadFile,
} from "../../client/node/index.js";
import { type Collaboration, type PartyId, simPolicy } from "../../scripts/demo/flow.js";
import { heapMiB } from "../fuzz/harness.js";

/** The approved query each party's sessions run. */
export const SESSION_QUERY: Record<PartyId, string> = {
  advertiser: "closed-loop",
  publisher: "audience-overlap",
};

/** Session i belongs to this party. */
export const sessionParty = (i: number): PartyId => (i % 2 ? "publisher" : "advertiser");

export interface LoadFigures {
  sessions: number;
  failed: number;
  wallMs: number;
  medianMs: number;
  maxMs: number;
  /** max / median session completion time. */
  fairness: number;
  peakRssMiB: number;
  peakHeapMiB: number;
  heapGrowthMiB: number;
}

export async function runSessions(
  url: string,
  simDir: string,
  workDir: string,
  c: Collaboration,
  sessions: number,
): Promise<{ figures: LoadFigures; errors: unknown[] }> {
  const policy = simPolicy(simDir);
  const stores: Record<PartyId, MemoryStateStore> = {
    advertiser: c.clients.advertiser.state.store as MemoryStateStore,
    publisher: c.clients.publisher.state.store as MemoryStateStore,
  };
  const queues: Record<PartyId, Promise<unknown>> = {
    advertiser: Promise.resolve(),
    publisher: Promise.resolve(),
  };
  const serial = <T>(party: PartyId, op: () => Promise<T>): Promise<T> => {
    const next = queues[party].then(op, op);
    queues[party] = next.catch(() => undefined);
    return next;
  };
  let peakRss = 0;
  let peakHeap = 0;
  const sample = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss / 2 ** 20);
    peakHeap = Math.max(peakHeap, heapMiB());
  }, 50);
  const heapBefore = heapMiB();
  const started = performance.now();
  const errors: unknown[] = [];
  const durations = await Promise.all(
    Array.from({ length: sessions }, async (_, i) => {
      const party = sessionParty(i);
      const t0 = performance.now();
      try {
        const client = await CleanroomClient.open({
          host: new HostClient(url),
          store: stores[party],
          policy,
          contract: c.contract,
          keys: c.clients[party].keys,
          decrypt: decryptAgeNode,
        });
        await client.reattest();
        const file = join(workDir, `session-${i}.csv`);
        writeFileSync(file, `session,${i}\n${"x".repeat(2048 + i)}\n`);
        await uploadFile(client, file);
        const r = await serial(party, () =>
          query(client, {
            queryId: SESSION_QUERY[party],
            params: party === "advertiser" ? { campaign: "spring24" } : {},
            format: "json",
          }),
        );
        if (!r.rows) throw new Error("no result");
      } catch (e) {
        errors.push(e);
      }
      return performance.now() - t0;
    }),
  );
  clearInterval(sample);
  const sorted = [...durations].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const max = sorted[sorted.length - 1]!;
  return {
    errors,
    figures: {
      sessions,
      failed: errors.length,
      wallMs: Math.round(performance.now() - started),
      medianMs: Math.round(median),
      maxMs: Math.round(max),
      fairness: Math.round((max / median) * 100) / 100,
      peakRssMiB: Math.round(peakRss),
      peakHeapMiB: Math.round(peakHeap),
      heapGrowthMiB: Math.round(heapMiB() - heapBefore),
    },
  };
}
