/**
 * Queries: each approved query as a form with an input of its parameter's type, the runs it has
 * left and the privacy budget left (counted from the verified audit log), and a run whose result
 * opens on the Results page.
 */
import { html, nothing } from "lit";
import type {
  AttestationView,
  JobView,
  QueriesView,
  QueryFormView,
  QueryJobResult,
} from "../../api-types.js";
import { followJob, get, post } from "../api.js";
import { AttestedPage, errorBox, type Failure, failureOf } from "../base.js";
import { num } from "../format.js";

/** The input for a parameter type, and how its value is sent (as the CLI takes it: text). */
function input(q: QueryFormView, p: { name: string; type: string }) {
  const id = `param-${q.id}-${p.name}`;
  const label = html`<label for=${id}>${p.name} <span class="type">(${p.type})</span></label>`;
  switch (p.type) {
    case "BOOLEAN":
      return html`${label}<select id=${id} name=${p.name} required><option value="true">true</option><option value="false">false</option></select>`;
    case "BIGINT":
      return html`${label}<input id=${id} name=${p.name} type="number" step="1" inputmode="numeric" required />`;
    case "DOUBLE":
      return html`${label}<input id=${id} name=${p.name} type="number" step="any" inputmode="decimal" required />`;
    case "DATE":
      return html`${label}<input id=${id} name=${p.name} type="date" required />`;
    case "TIMESTAMP":
      return html`${label}<input id=${id} name=${p.name} type="datetime-local" step="1" required />`;
    default:
      return html`${label}<input id=${id} name=${p.name} type="text" maxlength="4096" required />`;
  }
}

/** Form values as the console takes them; a datetime-local value gets the space the enclave reads. */
function paramsOf(form: HTMLFormElement, q: QueryFormView): Record<string, string> {
  const data = new FormData(form);
  const out: Record<string, string> = {};
  for (const p of q.parameters) {
    const v = String(data.get(p.name) ?? "");
    out[p.name] = p.type === "TIMESTAMP" ? v.replace("T", " ") : v;
  }
  return out;
}

export class QueriesPage extends AttestedPage {
  static override properties = { view: { state: true }, runs: { state: true } };
  declare view: QueriesView | undefined;
  declare runs: Record<string, { job?: JobView<QueryJobResult>; failure?: Failure }>;

  constructor() {
    super();
    this.view = undefined;
    this.runs = {};
  }

  protected override async refresh(): Promise<void> {
    try {
      [this.view, this.attested] = await Promise.all([
        get<QueriesView>("/api/queries"),
        get<AttestationView>("/api/attestation"),
      ]);
    } catch (e) {
      this.failure = failureOf(e);
    }
  }

  async #run(e: Event, q: QueryFormView): Promise<void> {
    e.preventDefault();
    const params = paramsOf(e.target as HTMLFormElement, q);
    this.runs = { ...this.runs, [q.id]: {} };
    try {
      const job = await post<JobView>("/api/runs", { queryId: q.id, params });
      const end = await followJob<QueryJobResult>(job, (j) => {
        this.runs = { ...this.runs, [q.id]: { job: j } };
      });
      if (end.state === "done") await this.refresh();
    } catch (err) {
      this.runs = { ...this.runs, [q.id]: { failure: failureOf(err) } };
    }
  }

  #query(q: QueryFormView) {
    const run = this.runs[q.id];
    const running = run?.job?.state === "running";
    const verified = this.attested?.state === "verified";
    const exhausted = q.runsLeft === 0;
    const done = run?.job?.state === "done" ? run.job.result : undefined;
    return html`<section class="card" aria-labelledby=${`run-${q.id}`} data-query=${q.id}>
      <h2 id=${`run-${q.id}`}><code>${q.id}</code> <span class="tag">${q.kind}</span></h2>
      ${q.description ? html`<p>${q.description}</p>` : nothing}
      <p class="meta">
        k = ${q.k} · run by ${q.runners.join(", ")} · result to ${q.recipients.join(", ")} ·
        runs ${q.maxRuns !== undefined ? html`<strong>${q.runsLeft} left</strong> of ${q.maxRuns}` : html`${q.runsUsed} so far (no limit)`}
        ${q.epsilon !== undefined ? html` · epsilon ${q.epsilon} per run, charged to every recipient` : nothing}
      </p>
      <form @submit=${(e: Event) => this.#run(e, q)}>
        ${q.parameters.length ? html`<div class="params">${q.parameters.map((p) => html`<div class="field">${input(q, p)}</div>`)}</div>` : html`<p>No parameters.</p>`}
        <button type="submit" class="primary" ?disabled=${!q.mayRun || !verified || running || exhausted}>Run ${q.id}</button>
        ${!q.mayRun ? html`<span class="meta">only ${q.runners.join(", ")} may run it</span>` : nothing}
      </form>
      <div aria-live="polite">
        ${running ? html`<p role="status"><progress aria-label=${`running ${q.id}`}></progress> running in the enclave (answers leave at the release interval)…</p>` : nothing}
        ${
          done
            ? html`<p role="status" data-run="done">Done: ${done.recipient ? html`${num(done.rows)} rows released to you. <a href=${`#/results/${done.resultId}`}>See the result</a>` : "you are not a recipient of this result."}${done.epsilon ? ` Epsilon ${done.epsilon} charged.` : ""}</p>`
            : nothing
        }
        ${run?.job?.state === "failed" ? errorBox(run.job.error) : nothing}
        ${errorBox(run?.failure)}
      </div>
    </section>`;
  }

  override render() {
    const v = this.view;
    return html`
      <h1>Queries</h1>
      ${errorBox(this.failure)}
      ${this.attested && this.attested.state !== "verified" ? html`<p class="error" role="alert">Runs are blocked: the enclave's attestation is ${this.attested.state}.</p>` : nothing}
      ${
        v
          ? html`
            <section class="budget" aria-label="Privacy budget">
              ${
                v.budget > 0
                  ? html`<label for="budget-meter">Privacy budget: ${num(v.spent)} of ${num(v.budget)} epsilon spent, <strong>${num(v.budgetLeft)} left</strong></label>
                      <meter id="budget-meter" min="0" max=${v.budget} .value=${v.spent} low=${v.budget * 0.5} high=${v.budget * 0.8} optimum="0"></meter>`
                  : html`<p>No differentially private query in this contract: no privacy budget applies.</p>`
              }
              ${v.auditProblem ? html`<p class="error">Run counts unavailable: ${v.auditProblem.message}</p>` : nothing}
            </section>
            ${v.queries.map((q) => this.#query(q))}`
          : nothing
      }
    `;
  }
}
customElements.define("cr-queries", QueriesPage);
