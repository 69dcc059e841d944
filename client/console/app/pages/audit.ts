/**
 * Audit: the enclave-signed, hash-chained log, verified in this process under the party's own
 * evidence policy, as a timeline; where the heads this party holds sit in it (its own answers'
 * highest, and those of other parties' answers it saw); a loud alarm when the host's log no
 * longer holds one of them (a rollback) or does not verify.
 */
import { html, nothing } from "lit";
import type { AuditView } from "../../api-types.js";
import { get } from "../api.js";
import { errorBox, ViewPage } from "../base.js";
import { short, when } from "../format.js";

const KIND_TEXT: Record<string, string> = {
  "enclave-started": "Enclave started",
  "contract-accepted": "Contract accepted",
  grant: "Key granted",
  "dataset-loaded": "Dataset loaded",
  "query-run": "Query run",
};

export class AuditPage extends ViewPage<AuditView> {
  override connectedCallback(): void {
    super.connectedCallback();
    void this.#load();
  }

  #load(): Promise<void> {
    return this.show(() => get<AuditView>("/api/audit"));
  }

  override render() {
    const v = this.view;
    const seen = new Set((v?.seenHeads ?? []).map((h) => h.seq));
    return html`
      <h1>Audit log</h1>
      <p class="lead">Every contract, grant, load and query run, signed by the enclave and chained by hash. This process verified each signature, each link and each enclave instance's evidence under your policy.</p>
      <div class="toolbar"><button type="button" @click=${() => this.#load()} ?disabled=${this.busy}>Verify again</button>
        ${this.busy ? html`<span role="status">verifying…</span>` : nothing}</div>
      ${errorBox(this.failure)}
      ${
        v
          ? v.ok
            ? html`<section class="banner state-verified" role="status" data-audit="verified">
                <p class="banner-title"><span aria-hidden="true">✓</span> Chain verified</p>
                <p>${v.entries.length} entries; head ${v.head?.seq} <code class="hex">${short(v.head?.hash, 16)}</code>.
                  ${v.myHead ? html`It holds the highest head you verified in a signed answer (entry ${v.myHead.seq})` : "You hold no head yet"}${v.seenHeads.length ? ` and the ${v.seenHeads.length} head${v.seenHeads.length === 1 ? "" : "s"} of other parties' answers you saw` : ""}.</p>
              </section>`
            : html`<section class="banner state-alarm" role="alert" data-audit=${v.problem?.rollback ? "rollback" : "broken"}>
                <p class="banner-title"><span aria-hidden="true">⚠</span> ${v.problem?.rollback ? "ROLLBACK DETECTED" : "The audit log does not verify"}</p>
                <p><strong>${v.problem?.code}</strong>: ${v.problem?.message}</p>
                <p>${v.problem?.rollback ? "The host is showing an older or different history than the enclave signed for you: budgets and run counts may have been rolled back. Stop and tell the other parties." : "Do not rely on this log; tell the other parties."}</p>
              </section>`
          : nothing
      }
      ${
        v?.entries.length
          ? html`<ol class="timeline" aria-label="Audit entries, oldest first">
              ${v.entries.map(
                (e) => html`<li class=${`kind-${e.kind}`} data-seq=${e.seq}>
                  <span class="seq">#${e.seq}</span>
                  <span class="kind">${KIND_TEXT[e.kind] ?? e.kind}</span>
                  <time datetime=${e.time}>${when(e.time)}</time>
                  <span class="summary">${e.summary}</span>
                  ${v.myHead?.seq === e.seq ? html`<span class="marker you">highest head you hold</span>` : nothing}
                  ${seen.has(e.seq) ? html`<span class="marker seen">seen in another party's answer</span>` : nothing}
                </li>`,
              )}
            </ol>`
          : nothing
      }
    `;
  }
}
customElements.define("cr-audit", AuditPage);
