/**
 * Results: every result the host keeps for this party (whoever ran the query), each checked
 * against the enclave's signature; one result as a chart chosen by its kind, a sortable table,
 * what was held back or noised, and CSV or JSON downloads.
 */
import { html, nothing } from "lit";
import type { ResultsListView, ResultView } from "../../api-types.js";
import { download, get, getBlob, getText } from "../api.js";
import { errorBox, type Failure, failureOf, LightElement, verdict } from "../base.js";
import { chooseChart, numberOf } from "../chart-kind.js";
import { type Chart, drawChart } from "../charts.js";
import { num, short, when } from "../format.js";

type Sort = { column: number; direction: "ascending" | "descending" } | undefined;

function compare(a: unknown, b: unknown): number {
  const x = numberOf(a);
  const y = numberOf(b);
  if (x !== undefined && y !== undefined) return x - y;
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : -1;
  if (b === null || b === undefined) return 1;
  return String(a).localeCompare(String(b));
}

export class ResultsPage extends LightElement {
  static override properties = {
    resultId: { type: String },
    list: { state: true },
    view: { state: true },
    sort: { state: true },
    failure: { state: true },
  };
  declare resultId: string;
  declare list: ResultsListView | undefined;
  declare view: ResultView | undefined;
  declare sort: Sort;
  declare failure: Failure | undefined;
  #chart: Chart | undefined;

  constructor() {
    super();
    this.resultId = "";
    this.list = undefined;
    this.view = undefined;
    this.sort = undefined;
    this.failure = undefined;
  }

  override willUpdate(changed: Map<string, unknown>): void {
    if (changed.has("resultId")) void this.#load();
  }

  async #load(): Promise<void> {
    this.failure = undefined;
    this.view = undefined;
    this.#chart = undefined;
    this.sort = undefined;
    try {
      if (this.resultId) {
        const v = await get<ResultView>(`/api/results/${this.resultId}`);
        this.#chart = drawChart(v, chooseChart(v));
        this.view = v;
      } else {
        this.list = await get<ResultsListView>("/api/results");
      }
    } catch (e) {
      this.failure = failureOf(e);
    }
  }

  override updated(): void {
    const slot = this.querySelector(".chart-slot");
    if (slot && this.#chart && slot.firstChild !== this.#chart.node) slot.replaceChildren(this.#chart.node);
  }

  #sortBy(column: number): void {
    const s = this.sort;
    this.sort = {
      column,
      direction: s?.column === column && s.direction === "ascending" ? "descending" : "ascending",
    };
  }

  async #download(kind: "csv" | "json" | "parquet"): Promise<void> {
    const v = this.view!;
    try {
      if (kind === "csv")
        download(`${v.queryId}-${v.id}.csv`, await getText(`/api/results/${v.id}/csv`), "text/csv");
      else if (kind === "parquet") {
        const file = await getBlob(`/api/results/${v.id}/parquet`);
        download(`${v.queryId}-${v.id}.parquet`, file, "application/vnd.apache.parquet");
      } else
        download(
          `${v.queryId}-${v.id}.json`,
          `${JSON.stringify({ columns: v.columns, rows: v.rows }, null, 2)}\n`,
          "application/json",
        );
    } catch (e) {
      this.failure = failureOf(e);
    }
  }

  #table(v: ResultView) {
    const s = this.sort;
    const rows = s
      ? [...v.rows].sort((a, b) => compare(a[s.column], b[s.column]) * (s.direction === "ascending" ? 1 : -1))
      : v.rows;
    const noise = new Map((v.dp?.noise ?? []).map((n) => [n.column, n.halfWidth95]));
    return html`<table class="result" data-rows=${v.rows.length}>
      <caption>Released rows (${v.rows.length}); select a column heading to sort</caption>
      <thead><tr>${v.columns.map(
        (c, i) => html`<th scope="col" aria-sort=${s?.column === i ? s.direction : "none"}>
          <button type="button" class="sort" @click=${() => this.#sortBy(i)}>${c.name}${noise.has(c.name) ? " (noisy)" : ""}
            <span aria-hidden="true">${s?.column === i ? (s.direction === "ascending" ? "▲" : "▼") : "↕"}</span></button></th>`,
      )}</tr></thead>
      <tbody>${rows.map(
        (r) =>
          html`<tr>${r.map((cell, i) => {
            const hw = noise.get(v.columns[i]!.name);
            return html`<td class=${numberOf(cell) !== undefined ? "num" : ""}>${num(cell)}${hw ? html` <span class="noise">±${num(hw, 2)}</span>` : nothing}</td>`;
          })}</tr>`,
      )}</tbody>
    </table>`;
  }

  #detail(v: ResultView) {
    return html`
      <p><a href="#/results">← All results</a></p>
      <h1>Result of <code>${v.queryId}</code></h1>
      ${v.description ? html`<p class="lead">${v.description}</p>` : nothing}
      <p class="meta">Run by ${v.requester} · ${v.rule === "custom" ? `differentially private, epsilon ${v.epsilon}` : `exact, k = ${v.k}`} · audit entry ${v.head.seq} · id <code>${v.id}</code></p>
      <p class="note" role="note">${v.suppression}</p>
      <figure class="chart-figure" data-chart=${chooseChart(v).kind}>
        ${this.#chart?.headline ? html`<p class="headline">${this.#chart.headline}</p>` : nothing}
        <div class="chart-slot"></div>
        ${this.#chart?.caption ? html`<figcaption>${this.#chart.caption}</figcaption>` : nothing}
      </figure>
      <div class="toolbar">
        <button type="button" @click=${() => this.#download("csv")}>Download CSV</button>
        <button type="button" @click=${() => this.#download("json")}>Download JSON</button>
        <button type="button" @click=${() => this.#download("parquet")}>Download Parquet</button>
      </div>
      ${this.#table(v)}`;
  }

  override render() {
    if (this.resultId)
      return html`${errorBox(this.failure)}${this.view ? this.#detail(this.view) : html`<p role="status">decrypting and checking the result…</p>`}`;
    const list = this.list?.results ?? [];
    return html`
      <h1>Results</h1>
      <p class="lead">Every result the host keeps for you, whoever ran the query. Each is checked against the enclave's signed digest before it is decrypted here.</p>
      ${errorBox(this.failure)}
      ${
        this.list && list.length === 0
          ? html`<p>No results for you yet.</p>`
          : html`<table class="results-list">
              <thead><tr><th scope="col">Query</th><th scope="col">Run by</th><th scope="col">When</th><th scope="col">Epsilon</th><th scope="col">Signature</th><th scope="col">Opened</th><th scope="col"><span class="sr-only">Open</span></th></tr></thead>
              <tbody>${list.map(
                (r) => html`<tr data-result=${r.id} data-query=${r.queryId ?? ""}>
                  <th scope="row"><code>${r.queryId ?? "?"}</code></th><td>${r.requester ?? ""}</td><td>${when(r.when)}</td><td>${num(r.epsilon)}</td>
                  <td>${verdict(r.verified, "verified", "not verified")}</td><td>${r.fetched ? "yes" : "new"}</td>
                  <td><a href=${`#/results/${r.id}`} aria-label=${`Open result ${short(r.id, 8)} of ${r.queryId ?? "query"}`}>Open</a></td></tr>`,
              )}</tbody>
            </table>`
      }`;
  }
}
customElements.define("cr-results", ResultsPage);
