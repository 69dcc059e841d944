/**
 * Results for every recipient: the runs the host keeps a result of this party's for (GET
 * /results?party=…, host/routes-results.ts), each one's signed answer checked with the enclave
 * keys this party attested; and a result's rows as people and programs want them. In JSON,
 * numbers are numbers: DuckDB hands 64-bit integers and decimals over as text, so a column typed
 * as an integer or decimal becomes a JSON number when that number is exact in a double (a
 * safe integer, or a decimal that reads back the same) and stays text otherwise.
 */
import type { AuditEntry } from "../../protocol/audit/entry.js";
import { ResponseSignatureError } from "../../protocol/jose/errors.js";
import type { QueryResponseBody } from "../../protocol/jose/messages.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { auditVerify } from "./audit.js";
import type { CleanroomClient } from "./client.js";
import { HostResponseError } from "./errors.js";
import type { HostState } from "./state.js";

export interface ListedResult {
  id: string;
  /** When the host stored it (the host's clock: informative only). */
  stored: string;
  /** False when no attested key of this party verifies the signed answer (e.g. an older enclave). */
  verified: boolean;
  queryId?: string;
  requester?: string;
  /** The enclave's signing time (seconds), from the verified answer. */
  signedAt?: number;
  epsilon?: number;
  head?: { seq: number; hash: string };
  /** Whether this party fetched it already (from this state directory). */
  fetched: boolean;
}

interface StoredRun {
  id?: unknown;
  response?: unknown;
  recipients?: unknown;
  created?: unknown;
}

const RESULT_ID = /^[0-9a-f]{32}$/;

/**
 * The runs with a result for this party, newest first. Each signed answer is checked with the
 * keys of the instances of the verified audit log (audit.ts), so runs of earlier instances verify
 * too; one that no instance of the log signed is listed as unverified.
 */
export async function listResults(
  client: CleanroomClient,
  o: { limit?: number } = {},
): Promise<ListedResult[]> {
  const query = `party=${encodeURIComponent(client.partyId)}${o.limit ? `&limit=${o.limit}` : ""}`;
  const log = await auditVerify(client);
  const reply = await client.host.getJson<{ results?: unknown }>(`/results?${query}`);
  if (!Array.isArray(reply?.results)) throw new HostResponseError("result listing is not a list");
  const keys = log.entries
    .filter((e): e is AuditEntry<"enclave-started"> => e.kind === "enclave-started")
    .map((e) => e.data.keys.signingKey);
  const fetched = new Set(await fetchedResults(client.state, client.partyId));
  const out: ListedResult[] = [];
  for (const run of reply.results as StoredRun[]) {
    if (typeof run?.id !== "string" || !RESULT_ID.test(run.id) || typeof run.response !== "string") {
      throw new HostResponseError("result listing entry malformed");
    }
    const item: ListedResult = {
      id: run.id,
      stored: typeof run.created === "string" ? run.created : "",
      verified: false,
      fetched: fetched.has(run.id),
    };
    // Newest keys first: the running enclave signed the recent runs.
    for (const key of [...keys].reverse()) {
      try {
        const p = await verifyResponse<QueryResponseBody>(run.response, key);
        if (!Object.hasOwn(p.body?.resultDigests ?? {}, client.partyId)) break;
        Object.assign(item, {
          verified: true,
          queryId: p.body.queryId,
          requester: p.body.requester,
          signedAt: p.iat,
          epsilon: p.body.epsilon,
          head: p.body.head,
        });
        break;
      } catch (e) {
        if (!(e instanceof ResponseSignatureError)) break;
      }
    }
    out.push(item);
  }
  return out;
}

const fetchedKey = (state: HostState, party: string) => `${state.prefix}/results-fetched-${party}.json`;
/** Ids remembered as fetched, most recent last; older ones are forgotten past this many. */
const FETCHED_KEPT = 10_000;

/** Result ids `party` fetched through this state directory. */
export async function fetchedResults(state: HostState, party: string): Promise<string[]> {
  const text = await state.store.get(fetchedKey(state, party));
  if (text === undefined) return [];
  try {
    const list = JSON.parse(text) as unknown;
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

export async function markFetched(state: HostState, party: string, id: string): Promise<void> {
  const list = (await fetchedResults(state, party)).filter((x) => x !== id);
  list.push(id);
  await state.store.set(fetchedKey(state, party), `${JSON.stringify(list.slice(-FETCHED_KEPT))}\n`);
}

/** A result in the enclave's JSON form: {columns: [{name, type}], rows: [[...]]}. */
export interface JsonResult {
  columns: { name: string; type: string }[];
  rows: unknown[][];
}

export function parseJsonResult(data: Uint8Array): JsonResult {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch {
    throw new HostResponseError("result is not JSON");
  }
  const d = doc as JsonResult;
  if (
    !Array.isArray(d?.columns) ||
    !d.columns.every((c) => typeof c?.name === "string" && typeof c.type === "string") ||
    !Array.isArray(d.rows) ||
    !d.rows.every((r) => Array.isArray(r) && r.length === d.columns.length)
  ) {
    throw new HostResponseError("result is not a {columns, rows} document");
  }
  return d;
}

const INTEGER_TYPES =
  /^(?:TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT)$/;

/** One value of a column of DuckDB type `type`, as a JSON number when that is exact. */
export function typedValue(type: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  if (INTEGER_TYPES.test(type)) {
    if (!/^-?\d+$/.test(value)) return value;
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  if (/^DECIMAL\b/.test(type)) {
    if (!/^-?\d+(?:\.\d+)?$/.test(value)) return value;
    const n = Number(value);
    return Number.isFinite(n) && sameDecimal(String(n), value) ? n : value;
  }
  return value;
}

/** True when two decimal texts denote the same number ("1.50" and "1.5", "-0.0" and "0"). */
function sameDecimal(a: string, b: string): boolean {
  const norm = (s: string) => {
    const neg = s.startsWith("-");
    const [i = "", f = ""] = s.replace(/^-/, "").split(".");
    const int = i.replace(/^0+(?=\d)/, "");
    const frac = f.replace(/0+$/, "");
    const zero = /^0*$/.test(int) && frac === "";
    return `${neg && !zero ? "-" : ""}${int}${frac ? `.${frac}` : ""}`;
  };
  return !/e/i.test(a) && norm(a) === norm(b);
}

/** The result with integer and decimal columns as JSON numbers where exact (see above). */
export function typedJsonResult(r: JsonResult): JsonResult {
  return {
    columns: r.columns,
    rows: r.rows.map((row) => row.map((v, i) => typedValue(r.columns[i]!.type, v))),
  };
}

/** CSV of a JSON result, cell for cell as the enclave writes CSV (empty for NULL). */
export function jsonResultToCsv(r: JsonResult): string {
  const cell = (v: unknown) =>
    v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
  const lines = [r.columns.map((c) => c.name), ...r.rows.map((row) => row.map(cell))];
  return lines.map((fields) => csvLine(fields)).join("");
}

/** As the enclave quotes (enclave/sql/run.ts): quotes, separators, line breaks or edge spaces. */
function csvLine(fields: string[]): string {
  return `${fields.map((t) => (/[",\r\n]|^\s|\s$/.test(t) ? `"${t.replaceAll('"', '""')}"` : t)).join(",")}\n`;
}
