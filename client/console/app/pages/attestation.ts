/** Attestation: the enclave's evidence as this party's process verified it, check by check. */
import { html, nothing } from "lit";
import type { AttestationView } from "../../api-types.js";
import { get, post } from "../api.js";
import { ATTESTATION_EVENT, errorBox, ViewPage, verdict } from "../base.js";
import { when } from "../format.js";

const STATE_TEXT: Record<string, string> = {
  verified: "Verified",
  "no-contract": "Genuine, no contract yet",
  refused: "Refused",
  unreachable: "Unreachable",
};

export function announceAttestation(a: AttestationView): void {
  window.dispatchEvent(new CustomEvent<AttestationView>(ATTESTATION_EVENT, { detail: a }));
}

function value(v: unknown): string {
  return typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
}

/** A TCB version as its components (bootloader, TEE, SNP firmware, microcode), then its raw value. */
function tcbValue(v: unknown): string {
  if (typeof v !== "object" || v === null) return String(v);
  const { raw, ...parts } = v as Record<string, unknown>;
  const text = Object.entries(parts)
    .map(([k, x]) => `${k} ${x}`)
    .join(" · ");
  return raw === undefined ? text : `${text} (${raw})`;
}

export class AttestationPage extends ViewPage<AttestationView> {
  override connectedCallback(): void {
    super.connectedCallback();
    void this.#load(() => get<AttestationView>("/api/attestation"));
  }

  #load(fetcher: () => Promise<AttestationView>): Promise<void> {
    return this.show(async () => {
      const view = await fetcher();
      announceAttestation(view);
      return view;
    });
  }

  #reattest(): void {
    void this.#load(() => post<AttestationView>("/api/attestation"));
  }

  override render() {
    const v = this.view;
    const tcb = v ? Object.entries(v.claims).filter(([k]) => /tcb/i.test(k)) : [];
    const measured = v?.measurement;
    const matches = measured !== undefined && v!.expectedMeasurements.includes(measured);
    return html`
      <h1>Attestation</h1>
      <p class="lead">
        This process fetched the enclave's evidence for a fresh nonce and verified it itself: the hardware
        signature chain, the image measurement against your pinned release, the platform policy, and that the
        enclave's keys and this contract are bound into the signed report.
      </p>
      <div class="toolbar">
        <button type="button" @click=${() => this.#reattest()} ?disabled=${this.busy}>Re-attest</button>
        ${this.busy ? html`<span role="status">verifying fresh evidence…</span>` : nothing}
      </div>
      ${errorBox(this.failure)}
      ${
        v
          ? html`
            <section class="banner state-${v.state}" role="status" aria-live="polite" data-attestation=${v.state}>
              <p class="banner-title">
                <span aria-hidden="true">${v.state === "verified" ? "✓" : v.state === "no-contract" ? "!" : "✗"}</span>
                ${STATE_TEXT[v.state]}
              </p>
              <p>${v.summary}</p>
              <p class="meta">Checked ${when(v.at)}${v.platform ? html` · platform <strong>${v.platform}</strong>` : nothing}
                ${v.simulated ? html` · <strong>simulated platform</strong> (evidence signed by a local root you chose to trust)` : nothing}</p>
            </section>

            <h2>Image measurement</h2>
            <dl class="facts">
              <dt>Measured (in the signed report)</dt>
              <dd><code class="hex">${measured ?? "not decoded"}</code></dd>
              <dt>Accepted by your policy</dt>
              <dd>${
                v.expectedMeasurements.length
                  ? v.expectedMeasurements.map((m) => html`<code class="hex">${m}</code><br />`)
                  : "any (no measurement pinned)"
              }</dd>
              <dt>Match</dt>
              <dd>${measured === undefined ? "—" : verdict(matches, "matches the pinned release", "does not match the pinned release")}</dd>
              ${
                v.expectedPcrs
                  ? html`<dt>Pinned Nitro PCRs</dt><dd>${Object.entries(v.expectedPcrs).map(([k, p]) => html`${k} <code class="hex">${p}</code><br />`)}</dd>`
                  : nothing
              }
              <dt>Contract bound by the enclave</dt>
              <dd>${v.enclaveContract === undefined ? "—" : v.enclaveContract === null ? "none yet" : html`<code class="hex">${v.enclaveContract}</code>`}</dd>
              <dt>This contract</dt>
              <dd><code class="hex">${v.contractDigest}</code></dd>
            </dl>

            <h2>Checks</h2>
            <table class="checks">
              <caption class="sr-only">Each verification step and its result</caption>
              <thead><tr><th scope="col">Check</th><th scope="col">Result</th><th scope="col">Reason</th></tr></thead>
              <tbody>
                ${v.checks.map(
                  (c) =>
                    html`<tr class=${c.ok ? "" : "failed"}><th scope="row">${c.name}</th><td>${verdict(c.ok)}</td><td>${c.detail ?? ""}</td></tr>`,
                )}
              </tbody>
            </table>
            ${
              v.errors.length
                ? html`<ul class="errors">${v.errors.map((e) => html`<li><strong>${e.code}</strong>: ${e.message}</li>`)}</ul>`
                : nothing
            }

            <h2>TCB</h2>
            ${
              tcb.length
                ? html`<dl class="facts">${tcb.map(([k, x]) => html`<dt>${k}</dt><dd><code>${tcbValue(x)}</code></dd>`)}</dl>`
                : html`<p>No TCB fields in this report.</p>`
            }

            <details>
              <summary>All report fields</summary>
              <table>
                <thead><tr><th scope="col">Field</th><th scope="col">Value</th></tr></thead>
                <tbody>${Object.entries(v.claims).map(([k, x]) => html`<tr><th scope="row">${k}</th><td><code class="hex">${value(x)}</code></td></tr>`)}</tbody>
              </table>
            </details>`
          : nothing
      }
    `;
  }
}
customElements.define("cr-attestation", AttestationPage);
