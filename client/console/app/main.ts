/**
 * The partner console's page. It talks only to the console process that served it (api.ts);
 * that process does the verification, encryption and decryption, and holds the keys.
 */
import { html, nothing } from "lit";
import type { AttestationView, SessionView } from "../api-types.js";
import { get, takeToken } from "./api.js";
import { ATTESTATION_EVENT, errorBox, type Failure, failureOf, LightElement } from "./base.js";
import "./pages/attestation.js";
import "./pages/audit.js";
import "./pages/contract.js";
import "./pages/data.js";
import "./pages/queries.js";
import "./pages/results.js";

const PAGES = [
  ["attestation", "Attestation"],
  ["contract", "Contract"],
  ["data", "Data"],
  ["queries", "Queries"],
  ["results", "Results"],
  ["audit", "Audit"],
] as const;
type Page = (typeof PAGES)[number][0];

function route(): { page: Page; id: string } {
  const [, page = "attestation", id = ""] = /^#\/([a-z]+)(?:\/([0-9a-f]+))?/.exec(location.hash) ?? [];
  return { page: (PAGES.some(([p]) => p === page) ? page : "attestation") as Page, id };
}

const BADGE: Record<string, string> = {
  verified: "attested ✓",
  "no-contract": "genuine, no contract yet",
  refused: "attestation refused ✗",
  unreachable: "enclave unreachable ✗",
};

class ConsoleApp extends LightElement {
  static override properties = {
    session: { state: true },
    attestation: { state: true },
    current: { state: true },
    failure: { state: true },
  };
  declare session: SessionView | undefined;
  declare attestation: AttestationView | undefined;
  declare current: { page: Page; id: string };
  declare failure: Failure | undefined;
  readonly #onHash = () => {
    this.current = route();
    document.title = `${PAGES.find(([p]) => p === this.current.page)![1]} · clean room console`;
    // Move focus to the new page's heading for keyboard and screen-reader users.
    requestAnimationFrame(() => (this.querySelector("main") as HTMLElement | null)?.focus());
  };
  readonly #onAttestation = (e: Event) => {
    this.attestation = (e as CustomEvent<AttestationView>).detail;
  };

  constructor() {
    super();
    this.session = undefined;
    this.attestation = undefined;
    this.current = route();
    this.failure = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("hashchange", this.#onHash);
    window.addEventListener(ATTESTATION_EVENT, this.#onAttestation);
    this.#onHash();
    void (async () => {
      try {
        this.session = await get<SessionView>("/api/session");
      } catch (e) {
        this.failure = failureOf(e);
      }
    })();
  }

  override disconnectedCallback(): void {
    window.removeEventListener("hashchange", this.#onHash);
    window.removeEventListener(ATTESTATION_EVENT, this.#onAttestation);
    super.disconnectedCallback();
  }

  #page() {
    switch (this.current.page) {
      case "contract":
        return html`<cr-contract></cr-contract>`;
      case "data":
        return html`<cr-data></cr-data>`;
      case "queries":
        return html`<cr-queries></cr-queries>`;
      case "results":
        return html`<cr-results .resultId=${this.current.id}></cr-results>`;
      case "audit":
        return html`<cr-audit></cr-audit>`;
      default:
        return html`<cr-attestation></cr-attestation>`;
    }
  }

  override render() {
    const s = this.session;
    const a = this.attestation;
    return html`
      <a class="skip" href="#main" @click=${(e: Event) => {
        e.preventDefault();
        (this.querySelector("main") as HTMLElement).focus();
      }}>Skip to content</a>
      <header class="top">
        <p class="brand">Clean room console</p>
        ${
          s
            ? html`<p class="who">${s.party.name} (<code>${s.party.id}</code>) · contract <code>${s.contract.id}</code> · host ${s.host}</p>`
            : nothing
        }
        ${a ? html`<p class=${`badge state-${a.state}`} role="status" data-badge=${a.state}>${BADGE[a.state]}</p>` : nothing}
      </header>
      <nav aria-label="Pages">
        <ul>${PAGES.map(
          ([p, label]) =>
            html`<li><a href=${`#/${p}`} aria-current=${this.current.page === p ? "page" : "false"}>${label}</a></li>`,
        )}</ul>
      </nav>
      <main id="main" tabindex="-1">${errorBox(this.failure)} ${this.#page()}</main>
      <footer><p>Served by your own cleanroom process on this machine${s ? ` (version ${s.version})` : ""}; your keys never reach this page.</p></footer>
    `;
  }
}
customElements.define("cr-app", ConsoleApp);

if (takeToken() === undefined) {
  document.body.textContent =
    "This page needs the address the cleanroom console command printed (it carries this session's token).";
} else {
  document.body.append(document.createElement("cr-app"));
}
