import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { runApprovedQuery } from "../../enclave/sql/run.js";
import { csvStream } from "./helpers.js";
import {
  audienceInsight,
  audienceOverlap,
  closedLoop,
  exposures,
  K,
  lastTouch,
  purchases,
  useCaseCsv,
} from "./usecases.js";

const data = useCaseCsv();

/** Ground truth computed in JS from the CSV text, independent of the engine. */
function overlapBySegment(): Map<string, { users: Set<string>; overlap: Set<string> }> {
  const buyers = new Set(
    data.purchases
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split(",")[0]!),
  );
  const out = new Map<string, { users: Set<string>; overlap: Set<string> }>();
  for (const line of data.exposures.trim().split("\n").slice(1)) {
    const [id, , , , , segment] = line.split(",");
    const entry = out.get(segment!) ?? { users: new Set(), overlap: new Set() };
    entry.users.add(id!);
    if (buyers.has(id!)) entry.overlap.add(id!);
    out.set(segment!, entry);
  }
  return out;
}

// Compressed storage is loaded in small segments, each compressed as it lands.
describe.each([
  ["row storage", false, undefined],
  ["compressed storage", true, 100_000],
] as const)("use-case queries (k = 50), %s", (_name, compress, segmentBytes) => {
  let engine: SqlEngine;
  beforeAll(async () => {
    engine = await openEngine({ compress });
    const o = segmentBytes ? { segmentBytes } : {};
    const p = await ingestDataset(engine, purchases, csvStream(data.purchases, 65536), o);
    const e = await ingestDataset(engine, exposures, csvStream(data.exposures, 65536), o);
    expect(p.identity.invalidFormat).toBe(0);
    expect(e.identity.duplicates).toBeGreaterThan(0); // several exposures per person
    const stored = await engine.connection.runAndReadAll(
      `SELECT count(*) FILTER (WHERE compression <> 'Uncompressed') > 0 FROM pragma_storage_info('${exposures.id}')`,
    );
    expect(stored.getRows()).toEqual([[compress]]);
  });
  afterAll(() => engine.close());

  it("closed-loop: exposed users convert more than control users", async () => {
    const r = await runApprovedQuery(engine, closedLoop, { campaign: "spring24" });
    expect(r.columns.map((c) => c.name)).toEqual(["arm", "users", "converters", "conversion_rate"]);
    const [control, exposed] = r.rows as [[string, string, string, number], [string, string, string, number]];
    expect(control[0]).toBe("control");
    expect(exposed[0]).toBe("exposed");
    expect(exposed[3]).toBeGreaterThan(control[3]);
    expect(r.groupsSuppressed).toBe(0);
    const none = await runApprovedQuery(engine, closedLoop, { campaign: "no-such-campaign" });
    expect(none.rows).toEqual([]);
  });

  it("audience overlap matches an independent count per segment", async () => {
    const r = await runApprovedQuery(engine, audienceOverlap, {});
    const truth = overlapBySegment();
    expect(r.rows).toEqual(
      [...truth.keys()]
        .sort()
        .map((s) => [s, String(truth.get(s)!.users.size), String(truth.get(s)!.overlap.size)]),
    );
  });

  it("last-touch attribution credits every channel", async () => {
    const r = await runApprovedQuery(engine, lastTouch, { start: "2024-04-01", end: "2024-05-01" });
    expect(r.rows.map((row) => row[0])).toEqual(["ctv", "display", "social"]);
    for (const row of r.rows) expect(Number(row[1])).toBeGreaterThanOrEqual(K);
  });

  it("audience insight suppresses the rare age band", async () => {
    const r = await runApprovedQuery(engine, audienceInsight, { category: "shoes" });
    expect(r.rows.map((row) => row[0])).toEqual(["18-34", "35-49", "50-64"]);
    expect(r.groupsSuppressed).toBe(1);
    for (const row of r.rows) expect(Number(row[1])).toBeGreaterThanOrEqual(K);
  });
});
