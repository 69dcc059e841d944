/**
 * Contract: the parties, the datasets with their schemas and column roles, every approved query
 * with its review (what it reads, releases and can reveal), who approved and who is missing;
 * signing after an explicit confirmation of the digest; submitting once every party signed.
 */
import { html, nothing } from "lit";
import type { QueryReview } from "../../../../protocol/rules/review.js";
import type { AttestationView, ContractView } from "../../api-types.js";
import { get, post } from "../api.js";
import { errorBox, ViewPage, verdict } from "../base.js";
import { when } from "../format.js";
import { announceAttestation } from "./attestation.js";

function queryReview(q: QueryReview) {
  return html`
    <article class="card query-review" aria-labelledby=${`q-${q.id}`}>
      <h3 id=${`q-${q.id}`}>${q.id} <span class="tag">${q.rule}</span> ${verdict(q.status === "admitted", "admitted by the rules", "refused by the rules")}</h3>
      ${q.description ? html`<p>${q.description}</p>` : nothing}
      ${q.refusal ? html`<p class="error">Refused: ${q.refusal}</p>` : nothing}
      <dl class="facts">
        <dt>Run by</dt><dd>${q.runners.join(", ")}</dd>
        <dt>Result to</dt><dd>${q.recipients.join(", ")}</dd>
        <dt>Minimum people per row (k)</dt><dd>${q.k}</dd>
        <dt>Reads</dt>
        <dd>${q.reads.map((r) => html`${r.dataset} (${r.owner}): ${r.columns.map((c) => c.name).join(", ")}<br />`)}</dd>
        ${q.joins.length ? html`<dt>Joins</dt><dd>${q.joins.map((j) => html`${j.type} ${j.dataset} on ${j.keys.join(" and ") || j.text}<br />`)}</dd>` : nothing}
        ${q.where ? html`<dt>Filter</dt><dd><code>${q.where}</code></dd>` : nothing}
        <dt>Releases</dt>
        <dd>${q.outputs.map((o) => html`<code>${o.name}</code>: ${o.kind}${o.aggregates.length ? ` (${o.aggregates.join(", ")})` : ""}${o.noise ? ` · noised as ${o.noise.kind}` : ""}<br />`)}</dd>
        ${q.parameters.length ? html`<dt>Parameters</dt><dd>${q.parameters.map((p) => html`<code>${p.name}</code> (${p.type})${p.filters.length ? ` filters ${p.filters.join(", ")}` : ""}<br />`)}</dd>` : nothing}
        ${
          q.dp
            ? html`<dt>Differential privacy</dt>
                <dd>epsilon ${q.dp.epsilon} per run, party budget ${q.dp.partyBudget} (${q.dp.runsPerBudget} runs), groups ${q.dp.groups}${q.dp.maxRowsPerIdentity ? `, at most ${q.dp.maxRowsPerIdentity} rows per person` : ""}${q.dp.clamp ? `, sums clamped to [${q.dp.clamp.lower}, ${q.dp.clamp.upper}]` : ""}</dd>`
            : nothing
        }
        <dt>Differencing guard</dt><dd>${q.differencingGuard === null ? "not applicable (noise bounds it)" : q.differencingGuard ? "on" : "off"}</dd>
        <dt>Runs allowed</dt><dd>${q.maxRuns ?? "no limit in the contract"}</dd>
      </dl>
      ${q.warnings.length ? html`<ul class="warnings">${q.warnings.map((w) => html`<li><strong>${w.code}</strong>: ${w.message}</li>`)}</ul>` : nothing}
      <details><summary>SQL</summary><pre><code>${q.sql}</code></pre></details>
    </article>`;
}

export class ContractPage extends ViewPage<ContractView> {
  static override properties = { pasted: { state: true } };
  declare pasted: string;

  constructor() {
    super();
    this.pasted = "";
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.show(() => get<ContractView>("/api/contract"));
  }

  #dialog(): HTMLDialogElement {
    return this.querySelector("dialog#sign-dialog") as HTMLDialogElement;
  }

  #confirmSign(): void {
    const digest = this.view!.digest;
    this.#dialog().close();
    void this.show(() => post<ContractView>("/api/contract/sign", { digest }));
  }

  #addApproval(): void {
    const approval = this.pasted;
    void this.show(async () => {
      const v = await post<ContractView>("/api/contract/approvals", { approval });
      this.pasted = "";
      return v;
    });
  }

  #submit(): void {
    void this.show(async () => {
      const v = await post<ContractView>("/api/contract/submit");
      announceAttestation(await get<AttestationView>("/api/attestation"));
      return v;
    });
  }

  override render() {
    const v = this.view;
    if (!v)
      return html`<h1>Contract</h1>${errorBox(this.failure)}${this.busy ? html`<p role="status">reading and reviewing the contract…</p>` : nothing}`;
    const r = v.review;
    const allSigned = v.approvals.every((a) => a.status === "signed");
    const missing = v.approvals.filter((a) => a.status !== "signed").map((a) => a.party);
    return html`
      <h1>Contract <code>${v.contract.id}</code></h1>
      <p class="lead">Digest (what each party signs): <code class="hex">${v.digest}</code></p>
      ${errorBox(this.failure)}

      <section aria-labelledby="approvals-h">
        <h2 id="approvals-h">Approvals</h2>
        <table class="approvals">
          <thead><tr><th scope="col">Party</th><th scope="col">Approval</th><th scope="col">Signed</th></tr></thead>
          <tbody>
            ${v.approvals.map(
              (a) => html`<tr data-party=${a.party}>
                <th scope="row">${a.name} (<code>${a.party}</code>)</th>
                <td>${verdict(a.status === "signed", "signed", "missing")}${a.source === "enclave" ? " (held by the enclave)" : ""}</td>
                <td>${a.iat ? when(new Date(a.iat * 1000).toISOString()) : ""}</td>
              </tr>`,
            )}
          </tbody>
        </table>
        <p role="status" class=${v.active ? "ok" : ""} data-contract-state=${v.active ? "active" : allSigned ? "ready" : "waiting"}>
          ${
            v.active
              ? "Active: the enclave's verified evidence binds this contract."
              : allSigned
                ? "Every party signed: submit it to the enclave."
                : `Waiting for: ${missing.join(", ")}. Approvals are exchanged in ${v.approvalsDir}.`
          }
        </p>
        <div class="toolbar">
          ${
            v.signedByMe
              ? nothing
              : html`<button type="button" class="primary" ?disabled=${this.busy || !r.admitted} @click=${() => this.#dialog().showModal()}>
                  Sign this contract…
                </button>`
          }
          ${
            !v.active
              ? html`<button type="button" ?disabled=${this.busy || !allSigned} @click=${() => this.#submit()}>Submit to the enclave</button>`
              : nothing
          }
        </div>
        ${!r.admitted ? html`<p class="error">The rules refuse a query of this contract: it cannot be signed.</p>` : nothing}
        ${
          v.active
            ? nothing
            : html`<form class="paste" @submit=${(e: Event) => {
                e.preventDefault();
                this.#addApproval();
              }}>
                <label for="approval-input">Another party's approval (as <code>cleanroom contract sign</code> prints it)</label>
                <textarea id="approval-input" rows="3" .value=${this.pasted} @input=${(e: Event) => (this.pasted = (e.target as HTMLTextAreaElement).value)}></textarea>
                <button type="submit" ?disabled=${this.busy || this.pasted.trim() === ""}>Add approval</button>
              </form>`
        }
        <dialog id="sign-dialog" aria-labelledby="sign-title">
          <h2 id="sign-title">Sign contract ${v.contract.id}?</h2>
          <p>Your approval accepts every dataset and query on this page, with the warnings shown, and nothing else.</p>
          <p>Digest: <code class="hex">${v.digest}</code></p>
          <p>${r.queries.length} queries, ${r.warnings.length} warnings.</p>
          <div class="toolbar">
            <button type="button" class="primary" @click=${() => this.#confirmSign()}>Sign with my key</button>
            <button type="button" @click=${() => this.#dialog().close()}>Cancel</button>
          </div>
        </dialog>
      </section>

      <section aria-labelledby="parties-h">
        <h2 id="parties-h">Parties</h2>
        <ul>${r.parties.map((p) => html`<li>${p.name} (<code>${p.id}</code>)</li>`)}</ul>
      </section>

      <section aria-labelledby="datasets-h">
        <h2 id="datasets-h">Datasets</h2>
        ${r.datasets.map(
          (d) => html`<article class="card" aria-labelledby=${`ds-${d.id}`}>
            <h3 id=${`ds-${d.id}`}><code>${d.id}</code> <span class="tag">${d.format}</span></h3>
            <p>Owner ${d.ownerName} (<code>${d.owner}</code>); identity column <code>${d.identity.column}</code> (${d.identity.format}).</p>
            <table>
              <thead><tr><th scope="col">Column</th><th scope="col">Type</th><th scope="col">Allowed use</th></tr></thead>
              <tbody>${d.columns.map((c) => html`<tr><th scope="row"><code>${c.name}</code></th><td>${c.type}</td><td>${c.roles.join(", ") || "none"}</td></tr>`)}</tbody>
            </table>
            ${d.warnings.length ? html`<ul class="warnings">${d.warnings.map((w) => html`<li><strong>${w.code}</strong>: ${w.message}</li>`)}</ul>` : nothing}
          </article>`,
        )}
      </section>

      <section aria-labelledby="queries-h">
        <h2 id="queries-h">Approved queries</h2>
        ${r.queries.map(queryReview)}
      </section>

      ${
        r.warnings.length
          ? html`<section aria-labelledby="warnings-h"><h2 id="warnings-h">All warnings</h2>
              <ul class="warnings">${r.warnings.map((w) => html`<li><strong>${w.code}</strong>: ${w.message}</li>`)}</ul></section>`
          : nothing
      }
    `;
  }
}
customElements.define("cr-contract", ContractPage);
