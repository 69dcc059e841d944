/**
 * Data: for each dataset this party owns, a file from the data folder checked locally against
 * the contract's schema (row and column of each problem), encrypted and uploaded with progress
 * and a cancel, granted to the enclave, and its quality report; the loads the verified audit log
 * records for every dataset (its versions).
 */
import { html, nothing } from "lit";
import type { CheckReport } from "../../../sdk/check.js";
import type {
  AttestationView,
  DataPageView,
  DatasetView,
  FilesView,
  GrantJobResult,
  JobView,
  UploadJobResult,
} from "../../api-types.js";
import { cancelJob, followJob, get, post } from "../api.js";
import { AttestedPage, errorBox, type Failure, failureOf, verdict } from "../base.js";
import { bytes, num, percent, short, when } from "../format.js";

interface Loader {
  file: string;
  /** How a load over an existing version goes: its rows replace that version's, or are added to them. */
  mode: "replace" | "append";
  check?: CheckReport & { file: string };
  checking?: boolean;
  upload?: JobView<UploadJobResult>;
  grant?: JobView<GrantJobResult>;
  failure?: Failure;
}

const PHASES: Record<string, string> = {
  check: "checking the file against the schema",
  encrypt: "encrypting (first pass: hashing the ciphertext)",
  upload: "uploading the ciphertext",
  load: "the enclave is decrypting and loading the rows",
};

function progressOf(j: JobView | undefined) {
  if (j?.state !== "running") return nothing;
  const p = j.progress;
  const label = PHASES[p?.phase ?? ""] ?? p?.phase ?? "working";
  const known = p?.total !== undefined && p.total > 0 && p.done !== undefined;
  const rows = p?.rows !== undefined ? `, ${num(p.rows)} rows` : "";
  return html`<div class="progress">
    <label for=${`p-${j.id}`}>${label}${known ? ` — ${bytes(p!.done!)} of ${bytes(p!.total!)}${rows}` : "…"}</label>
    ${known ? html`<progress id=${`p-${j.id}`} max=${p!.total!} .value=${p!.done!}></progress>` : html`<progress id=${`p-${j.id}`}></progress>`}
  </div>`;
}

function qualityTable(q: Record<string, unknown>) {
  const nulls = (q["nullRate"] ?? {}) as Record<string, number>;
  const identity = (q["identity"] ?? {}) as Record<string, unknown>;
  const rows: [string, unknown][] = [
    ["rows loaded", q["rowsAccepted"]],
    ["rows rejected", q["rowsRejected"]],
    ["rows dropped (no identity)", q["droppedNullIdentity"]],
    ["identities in a wrong format", identity["invalidFormat"] ?? "not checked"],
    ["rows repeating an identity", identity["duplicates"]],
  ];
  return html`<section class="quality" aria-label="Quality report">
    <h4>Quality report (from the enclave, encrypted to you)</h4>
    <table><tbody>${rows.map(([k, x]) => html`<tr><th scope="row">${k}</th><td>${num(x)}</td></tr>`)}</tbody></table>
    <table>
      <caption>Empty values per column</caption>
      <thead><tr><th scope="col">Column</th><th scope="col">Share empty</th><th scope="col"><span class="sr-only">bar</span></th></tr></thead>
      <tbody>${Object.entries(nulls).map(
        ([c, r]) => html`<tr><th scope="row"><code>${c}</code></th><td>${percent(r)}</td>
          <td><meter min="0" max="1" low="0.05" high="0.2" optimum="0" .value=${r} aria-label=${`${c} empty ${percent(r)}`}></meter></td></tr>`,
      )}</tbody>
    </table>
  </section>`;
}

function checkReport(r: CheckReport & { file: string }) {
  return html`<section class="check" aria-label="Local check">
    <p role="status" data-check=${r.ok ? "ok" : "problems"}>
      ${verdict(r.ok, `${r.file} matches the schema`, `${r.file} does not match the schema`)}:
      ${num(r.rows)} rows, ${bytes(r.bytes)}${r.rowsWithoutIdentity ? `, ${num(r.rowsWithoutIdentity)} rows without an identity (dropped at load)` : ""}.
    </p>
    ${
      r.problems.length
        ? html`<table class="problems">
            <caption>First problems (counts per kind: ${Object.entries(r.counts)
              .map(([k, n]) => `${k} ${n}`)
              .join(", ")})</caption>
            <thead><tr><th scope="col">Line</th><th scope="col">Row</th><th scope="col">Column</th><th scope="col">Problem</th></tr></thead>
            <tbody>${r.problems.map((p) => html`<tr><td>${p.line ?? ""}</td><td>${p.row ?? ""}</td><td>${p.column ?? ""}</td><td>${p.message}</td></tr>`)}</tbody>
          </table>`
        : nothing
    }
  </section>`;
}

export class DataPage extends AttestedPage {
  static override properties = {
    data: { state: true },
    files: { state: true },
    loaders: { state: true },
  };
  declare data: DataPageView | undefined;
  declare files: FilesView | undefined;
  declare loaders: Record<string, Loader>;

  constructor() {
    super();
    this.data = undefined;
    this.files = undefined;
    this.loaders = {};
  }

  protected override async refresh(): Promise<void> {
    try {
      const [data, files, attested] = await Promise.all([
        get<DataPageView>("/api/data"),
        get<FilesView>("/api/files"),
        get<AttestationView>("/api/attestation"),
      ]);
      this.data = data;
      this.files = files;
      this.attested = attested;
      for (const ds of data.datasets.filter((d) => d.mine)) {
        if (!this.loaders[ds.id]) this.#set(ds.id, { file: files.files[0]?.name ?? "", mode: "replace" });
      }
    } catch (e) {
      this.failure = failureOf(e);
    }
  }

  #set(id: string, patch: Partial<Loader>): void {
    this.loaders = {
      ...this.loaders,
      [id]: { ...(this.loaders[id] ?? { file: "", mode: "replace" }), ...patch },
    };
  }

  async #check(ds: string): Promise<void> {
    const l = this.loaders[ds]!;
    this.#set(ds, { checking: true, failure: undefined, check: undefined });
    try {
      this.#set(ds, {
        check: await post<CheckReport & { file: string }>("/api/check", { dataset: ds, file: l.file }),
      });
    } catch (e) {
      this.#set(ds, { failure: failureOf(e) });
    } finally {
      this.#set(ds, { checking: false });
    }
  }

  async #upload(ds: string): Promise<void> {
    const l = this.loaders[ds]!;
    this.#set(ds, { failure: undefined, upload: undefined, grant: undefined });
    try {
      const job = await post<JobView>("/api/uploads", { dataset: ds, file: l.file });
      const end = await followJob<UploadJobResult>(job, (j) => this.#set(ds, { upload: j }));
      if (end.state === "done") await this.refresh();
    } catch (e) {
      this.#set(ds, { failure: failureOf(e) });
    }
  }

  async #cancel(ds: string): Promise<void> {
    const job = this.loaders[ds]?.upload;
    if (!job) return;
    try {
      this.#set(ds, { upload: (await cancelJob(job.id)) as JobView<UploadJobResult> });
    } catch (e) {
      this.#set(ds, { failure: failureOf(e) });
    }
  }

  async #grant(ds: string, digest: string | undefined, previous: number | undefined): Promise<void> {
    this.#set(ds, { failure: undefined, grant: undefined });
    const lineage = previous !== undefined ? { previous, mode: this.loaders[ds]!.mode } : {};
    try {
      const job = await post<JobView>("/api/grants", {
        dataset: ds,
        ...(digest ? { digest } : {}),
        ...lineage,
      });
      const end = await followJob<GrantJobResult>(job, (j) => this.#set(ds, { grant: j }));
      if (end.state === "done") await this.refresh();
    } catch (e) {
      this.#set(ds, { failure: failureOf(e) });
    }
  }

  #owned(ds: DatasetView) {
    const l = this.loaders[ds.id] ?? { file: "", mode: "replace" };
    const verified = this.attested?.state === "verified";
    const uploading = l.upload?.state === "running";
    const granting = l.grant?.state === "running";
    const uploaded = l.upload?.state === "done" ? l.upload.result : undefined;
    const digest = uploaded?.digest ?? ds.lastUpload?.digest;
    const quality = l.grant?.result?.quality ?? ds.quality;
    return html`
      <div class="loader">
        <label for=${`file-${ds.id}`}>File in ${this.files?.dir ?? "the data folder"}</label>
        <select id=${`file-${ds.id}`} .value=${l.file} @change=${(e: Event) => this.#set(ds.id, { file: (e.target as HTMLSelectElement).value, check: undefined })}>
          ${(this.files?.files ?? []).map((f) => html`<option value=${f.name} ?selected=${f.name === l.file}>${f.name} (${bytes(f.size)})</option>`)}
        </select>
        <div class="toolbar">
          <button type="button" ?disabled=${!l.file || l.checking || uploading} @click=${() => this.#check(ds.id)}>Check</button>
          <button type="button" class="primary" ?disabled=${!l.file || !verified || uploading || l.check?.ok !== true || l.check.file !== l.file}
            @click=${() => this.#upload(ds.id)}>Encrypt and upload</button>
          ${uploading ? html`<button type="button" @click=${() => this.#cancel(ds.id)}>Cancel upload</button>` : nothing}
          <button type="button" ?disabled=${!digest || !verified || granting || uploading} @click=${() => this.#grant(ds.id, digest, ds.currentVersion)}>
            ${ds.currentVersion === undefined ? "Grant to the enclave" : `Grant as a new version (${l.mode} version ${ds.currentVersion})`}
          </button>
        </div>
        ${
          ds.currentVersion === undefined
            ? nothing
            : html`<fieldset class="mode">
                <legend>The enclave holds version ${ds.currentVersion}; the next load</legend>
                <label><input type="radio" name=${`mode-${ds.id}`} value="replace" .checked=${l.mode === "replace"}
                  @change=${() => this.#set(ds.id, { mode: "replace" })} /> replaces its rows (a refreshed file)</label>
                <label><input type="radio" name=${`mode-${ds.id}`} value="append" .checked=${l.mode === "append"}
                  @change=${() => this.#set(ds.id, { mode: "append" })} /> adds rows to them (new rows only)</label>
              </fieldset>`
        }
        ${verified ? nothing : html`<p class="error" role="alert" data-blocked="upload">Upload and grant are blocked: the enclave's attestation is ${this.attested?.state ?? "not checked"}. See the Attestation page.</p>`}
        ${l.checking ? html`<p role="status">checking ${l.file}…</p>` : nothing}
        ${l.check ? checkReport(l.check) : nothing}
        <div aria-live="polite">
          ${progressOf(l.upload)} ${progressOf(l.grant)}
          ${l.upload?.state === "cancelled" ? html`<p role="status" data-upload="cancelled">Upload cancelled: no more of the file is read, encrypted or sent. The ciphertext sent so far stays at the host until it drops abandoned uploads (after a week); uploading the unchanged file again resumes where it stopped.</p>` : nothing}
          ${uploaded ? html`<p role="status" data-upload="done">Uploaded ${bytes(uploaded.size)} of ciphertext${uploaded.skipped ? " (the host already had it)" : ""}: <code class="hex">${uploaded.digest}</code></p>` : nothing}
          ${
            l.grant?.state === "done"
              ? html`<p role="status" data-grant="done">Loaded in the enclave: ${num(l.grant.result?.rows)} rows${
                  l.grant.result?.version !== undefined
                    ? ` as version ${l.grant.result.version} (${l.grant.result.mode}; ${num(l.grant.result.totalRows)} rows in the dataset now)`
                    : ""
                } (audit entry ${l.grant.result?.head.seq}).</p>`
              : nothing
          }
          ${l.upload?.state === "failed" ? errorBox(l.upload.error) : nothing}
          ${l.grant?.state === "failed" ? errorBox(l.grant.error) : nothing}
          ${errorBox(l.failure)}
        </div>
        ${ds.lastUpload && !uploaded ? html`<p>Last upload: ${ds.lastUpload.file.split("/").pop()} at ${when(ds.lastUpload.at)}, <code class="hex">${short(ds.lastUpload.digest, 16)}</code></p>` : nothing}
        ${quality ? qualityTable(quality) : nothing}
      </div>`;
  }

  override render() {
    return html`
      <h1>Data</h1>
      <p class="lead">Files never leave this machine in the clear: this process checks them, encrypts them to your own key, uploads the ciphertext and gives the attested enclave its key.</p>
      ${errorBox(this.failure)}
      ${this.data?.auditProblem ? html`<p class="error">Versions unavailable: ${this.data.auditProblem.code}: ${this.data.auditProblem.message}</p>` : nothing}
      ${(this.data?.datasets ?? []).map(
        (ds) => html`<section class="card" aria-labelledby=${`data-${ds.id}`} data-dataset=${ds.id}>
          <h2 id=${`data-${ds.id}`}><code>${ds.id}</code> ${ds.mine ? html`<span class="tag">yours</span>` : html`<span class="tag">${ds.owner}'s</span>`}</h2>
          <details ?open=${ds.mine}>
            <summary>Schema: ${ds.columns.length} columns, identity <code>${ds.identityColumn}</code> (${ds.identityFormat ?? "sha256-hex"}), ${ds.format}</summary>
            <table><thead><tr><th scope="col">Column</th><th scope="col">Type</th></tr></thead>
              <tbody>${ds.columns.map((c) => html`<tr><th scope="row"><code>${c.name}</code></th><td>${c.type}</td></tr>`)}</tbody></table>
          </details>
          ${ds.mine ? this.#owned(ds) : nothing}
          <h3>Versions loaded (from the verified audit log)</h3>
          ${
            ds.versions.length
              ? html`<table class="versions">
                  <thead><tr><th scope="col">Version</th><th scope="col">How</th><th scope="col">Rows added</th><th scope="col">Rows after</th>
                    <th scope="col">Audit entry</th><th scope="col">Time</th><th scope="col">Ciphertext</th></tr></thead>
                  <tbody>${ds.versions.map(
                    (
                      v,
                    ) => html`<tr class=${v.current ? "" : "past"}><td>${v.version ?? "—"}${v.current ? "" : " (earlier enclave)"}</td><td>${v.mode ?? ""}</td>
                      <td class="num">${num(v.rows)}</td><td class="num">${num(v.totalRows)}</td><td>${v.seq}</td><td>${when(v.time)}</td>
                      <td><code class="hex">${short(v.ciphertextDigest, 16)}</code></td></tr>`,
                  )}</tbody></table>`
              : html`<p>Not loaded yet.</p>`
          }
        </section>`,
      )}
    `;
  }
}
customElements.define("cr-data", DataPage);
