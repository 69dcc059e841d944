/** Shared pieces of the page's components: light DOM (one stylesheet, app.css), error display. */
import { html, LitElement, type PropertyDeclarations, type TemplateResult } from "lit";
import type { AttestationView } from "../api-types.js";
import { ApiFailure } from "./api.js";

/** Components render into the document itself, so app.css styles them and tests and tools see one tree. */
export class LightElement extends LitElement {
  protected override createRenderRoot(): HTMLElement {
    return this;
  }
}

export interface Failure {
  code: string;
  message: string;
}

export function failureOf(e: unknown): Failure {
  if (e instanceof ApiFailure) return { code: e.code, message: e.message };
  return { code: "ERR_CONSOLE", message: e instanceof Error ? e.message : String(e) };
}

export function errorBox(f: Failure | undefined): TemplateResult | string {
  if (!f) return "";
  return html`<p class="error" role="alert"><strong>${f.code}</strong>: ${f.message}</p>`;
}

/** ✓ / ✗ with the word, so the verdict does not rest on colour or a symbol alone. */
export function verdict(ok: boolean, yes = "passed", no = "failed"): TemplateResult {
  return html`<span class=${ok ? "ok" : "bad"}><span aria-hidden="true">${ok ? "✓" : "✗"}</span> ${ok ? yes : no}</span>`;
}

/** Announces an attestation change to the header badge and the pages that gate on it. */
export const ATTESTATION_EVENT = "cr-attestation";

/**
 * A page that shows one view the console server answers: `busy` while an operation runs, and the
 * operation's failure when it fails (the view it had stays).
 */
export class ViewPage<V> extends LightElement {
  static override properties: PropertyDeclarations = {
    view: { state: true },
    failure: { state: true },
    busy: { state: true },
  };
  declare view: V | undefined;
  declare failure: Failure | undefined;
  declare busy: boolean;

  constructor() {
    super();
    this.view = undefined;
    this.failure = undefined;
    this.busy = false;
  }

  /** Runs `op` and shows the view it answers, or its failure. */
  protected async show(op: () => Promise<V>): Promise<void> {
    this.busy = true;
    this.failure = undefined;
    try {
      this.view = await op();
    } catch (e) {
      this.failure = failureOf(e);
    } finally {
      this.busy = false;
    }
  }
}

/**
 * A page that gates its actions on the attestation: it keeps the latest one announced
 * (`attested`) and loads its own state (`refresh`) each time it is shown.
 */
export abstract class AttestedPage extends LightElement {
  static override properties: PropertyDeclarations = { attested: { state: true }, failure: { state: true } };
  declare attested: AttestationView | undefined;
  declare failure: Failure | undefined;
  readonly #onAttestation = (e: Event) => {
    this.attested = (e as CustomEvent<AttestationView>).detail;
  };

  constructor() {
    super();
    this.attested = undefined;
    this.failure = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener(ATTESTATION_EVENT, this.#onAttestation);
    void this.refresh();
  }

  override disconnectedCallback(): void {
    window.removeEventListener(ATTESTATION_EVENT, this.#onAttestation);
    super.disconnectedCallback();
  }

  /** Fetches what the page shows (the attestation among it); a failure goes to `failure`. */
  protected abstract refresh(): Promise<void>;
}
