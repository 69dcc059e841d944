/**
 * Long operations the page starts and watches: an upload, a grant, a query run. Each runs in the
 * local process; the page polls its progress and may cancel it. Cancelling aborts the job's
 * signal; the operation stops at its next progress report (`report` throws once cancelled), so
 * nothing more is read, encrypted or sent after it.
 */
import { randomBytes } from "node:crypto";
import { isCleanroomError } from "../../attestation/errors.js";
import type { JobKind, JobProgress, JobView } from "./api-types.js";
import { ConsoleCancelledError, ConsoleNotFoundError, ConsoleRequestError } from "./errors.js";
import { errorBody } from "./http-errors.js";

export interface JobContext {
  signal: AbortSignal;
  /** Records progress; throws ConsoleCancelledError once the job was cancelled. */
  report(p: JobProgress): void;
}

interface Job {
  view: JobView;
  cancellable: boolean;
  controller: AbortController;
  done: Promise<void>;
}

/** Finished jobs kept for the page to read, most recent last. */
const KEPT = 100;

export class Jobs {
  readonly #jobs = new Map<string, Job>();

  /**
   * Starts `run`. Only a `cancellable` job may be cancelled: one whose operation reports progress
   * while it works and has no effect until it completes (an upload). A grant or a query run acts
   * as soon as it is sent, so it is never reported as cancelled.
   */
  start<R>(
    kind: JobKind,
    label: string,
    run: (ctx: JobContext) => Promise<R>,
    options: { cancellable?: boolean } = {},
  ): JobView {
    const id = randomBytes(12).toString("hex");
    const controller = new AbortController();
    const view: JobView = { id, kind, label, state: "running", started: new Date().toISOString() };
    const ctx: JobContext = {
      signal: controller.signal,
      report(p) {
        if (controller.signal.aborted) throw new ConsoleCancelledError(`${label}: cancelled`);
        view.progress = p;
      },
    };
    const done = (async () => {
      try {
        // Completed before a late cancel took effect: it is done, and said so.
        view.result = await run(ctx);
        view.state = "done";
      } catch (e) {
        view.state = controller.signal.aborted ? "cancelled" : "failed";
        view.error = controller.signal.aborted
          ? { code: ConsoleCancelledError.code, message: `${label}: cancelled` }
          : errorBody(e).error;
        if (!controller.signal.aborted && !isCleanroomError(e)) {
          process.stderr.write(`console: ${label} failed: ${(e as Error)?.stack ?? String(e)}\n`);
        }
      } finally {
        view.ended = new Date().toISOString();
      }
    })();
    this.#jobs.set(id, { view, controller, done, cancellable: options.cancellable === true });
    this.#prune();
    return { ...view };
  }

  get(id: string): JobView {
    const job = this.#jobs.get(id);
    if (!job) throw new ConsoleNotFoundError(`no job ${id} in this console (it may have been restarted)`);
    return { ...job.view, ...(job.view.progress ? { progress: { ...job.view.progress } } : {}) };
  }

  /** Cancels a running job and waits until it has stopped. */
  async cancel(id: string): Promise<JobView> {
    const job = this.#jobs.get(id);
    if (!job) throw new ConsoleNotFoundError(`no job ${id} in this console (it may have been restarted)`);
    if (!job.cancellable) {
      throw new ConsoleRequestError(
        `${job.view.label}: a ${job.view.kind} cannot be cancelled once it was sent`,
      );
    }
    if (job.view.state === "running") job.controller.abort();
    await job.done;
    return this.get(id);
  }

  /** Stops every cancellable job and waits for all of them (the console is closing). */
  async cancelAll(): Promise<void> {
    for (const job of this.#jobs.values()) {
      if (job.cancellable && job.view.state === "running") job.controller.abort();
    }
    await Promise.all([...this.#jobs.values()].map((j) => j.done));
  }

  #prune(): void {
    const finished = [...this.#jobs.values()].filter((j) => j.view.state !== "running");
    for (const j of finished.slice(0, Math.max(0, finished.length - KEPT))) this.#jobs.delete(j.view.id);
  }
}
