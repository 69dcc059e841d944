/**
 * Loads of one contract's datasets in this instance: which version a grant may build on, the load
 * in progress per dataset (and how far it got), and the answer of the last load, so a grant
 * repeated after a lost answer (a dropped connection, a client timeout) gets that answer and its
 * quality report instead of a refusal or a second load (idempotent by ciphertext digest).
 *
 * A grant names the version it builds on (`previous`, absent for a first load) and whether it
 * replaces or appends to it. It is refused when that is not the current version: a refresh
 * prepared against version 3 cannot land on version 4. A repeat of the grant that made the
 * current version (same file, same `previous` and mode), or of the load in progress, is not a
 * new load: the same answer comes back. A failed load changes nothing (ingest.ts stages the rows
 * and only a checked load switches versions), so the previous version stays and a new grant of a
 * corrected file builds on it.
 */
import type { AuditHead } from "../protocol/audit/entry.js";
import { AlreadyLoadedError, DatasetVersionError } from "./errors.js";
import type { Grant } from "./grants.js";
import type { SqlEngine } from "./sql/engine.js";
import type { DatasetVersion, LoadMode } from "./sql/versions.js";

/** What the owner's signed ingest answer says about a load, and its sealed quality report. */
export interface LoadAnswer extends DatasetVersion {
  dataset: string;
  ciphertextDigest: string;
  /** SHA-256 (hex) of the quality report's age file. */
  qualityDigest: string;
  /** base64 of the quality report's age file (encrypted to the owner). */
  quality: string;
  /** The chain head right after the load's audit entry. */
  head: AuditHead;
}

/** How far a load in progress got: ciphertext bytes received, rows loaded so far. */
export interface LoadProgress {
  dataset: string;
  ciphertextDigest: string;
  version: number;
  bytes: number;
  rows: number;
}

/** The parts of a grant that make two grants the same request. */
interface LoadRequest {
  ciphertextDigest: string;
  previous?: number | undefined;
  mode: "replace" | "append";
}

function same(a: LoadRequest, b: LoadRequest): boolean {
  return (
    a.ciphertextDigest === b.ciphertextDigest &&
    a.previous === b.previous &&
    // A first load has no mode to compare.
    (a.previous === undefined || a.mode === b.mode)
  );
}

interface Running extends LoadRequest {
  progress: LoadProgress;
  done: Promise<LoadAnswer>;
}

export class Loads {
  readonly #running = new Map<string, Running>();
  /** The answer of the load that made each dataset's current version. */
  readonly #last = new Map<string, LoadAnswer & LoadRequest>();

  constructor(private readonly engine: SqlEngine) {}

  /** The dataset's current version in this instance; 0 when it is not loaded. */
  current(dataset: string): number {
    return this.engine.versions.get(dataset)?.at(-1)?.version ?? 0;
  }

  /**
   * Refuses, at grant time, a grant that could not load (see the module comment); true when it
   * repeats the load in progress or the one that made the current version (no bytes needed).
   */
  admit(dataset: string, request: LoadRequest): boolean {
    if (this.#repeats(dataset, request)) return true;
    if (this.#running.has(dataset)) {
      throw new AlreadyLoadedError(
        `a load of dataset ${dataset} is in progress: wait for it, then grant again naming the version it makes`,
      );
    }
    const current = this.current(dataset);
    if ((request.previous ?? 0) !== current)
      throw new DatasetVersionError(dataset, current, request.previous);
    return false;
  }

  #repeats(dataset: string, request: LoadRequest): boolean {
    const running = this.#running.get(dataset);
    if (running) return same(running, request);
    const last = this.#last.get(dataset);
    return last !== undefined && last.version === this.current(dataset) && same(last, request);
  }

  /**
   * Runs the load `grant` permits (`load` gets how the rows join the dataset and the progress to
   * update), or answers a repeated grant with the first load's answer (`repeated`).
   */
  async run(
    grant: Grant,
    load: (into: LoadMode, progress: LoadProgress) => Promise<LoadAnswer>,
  ): Promise<{ answer: LoadAnswer; repeated: boolean }> {
    const { dataset } = grant;
    const request: LoadRequest = {
      ciphertextDigest: grant.ciphertextDigest,
      previous: grant.previous,
      mode: grant.mode ?? "replace",
    };
    const running = this.#running.get(dataset);
    if (running && same(running, request)) return { answer: await running.done, repeated: true };
    if (!running && this.#repeats(dataset, request))
      return { answer: this.#last.get(dataset)!, repeated: true };
    // The version may have moved since the grant (another grant's load finished in between).
    this.admit(dataset, request);
    const into: LoadMode = request.previous === undefined ? "new" : request.mode;
    const progress: LoadProgress = {
      dataset,
      ciphertextDigest: grant.ciphertextDigest,
      version: this.current(dataset) + 1,
      bytes: 0,
      rows: 0,
    };
    const done = load(into, progress);
    this.#running.set(dataset, { ...request, progress, done });
    try {
      const answer = await done;
      this.#last.set(dataset, { ...answer, ...request });
      return { answer, repeated: false };
    } finally {
      this.#running.delete(dataset);
    }
  }

  /** Loads in progress, for the host's progress route (counts only; the audit log has them anyway). */
  progress(): LoadProgress[] {
    return [...this.#running.values()].map((r) => ({ ...r.progress }));
  }
}
