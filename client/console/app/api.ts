/**
 * The page's only connection: the console process that served it, with this launch's token.
 * The token arrives in the address's fragment (never sent to any server), is kept for this tab
 * only, and goes in the Authorization header of every call.
 */
import type { JobView } from "../api-types.js";

const TOKEN_KEY = "cleanroom-console-token";

/** Takes the token out of the address (so it is not left in the address bar) and keeps it for this tab. */
export function takeToken(): string | undefined {
  const m = /(?:^#|&)token=([A-Za-z0-9_-]{16,128})/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, m[1]!);
    history.replaceState(null, "", `${location.pathname}#/attestation`);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** A refusal or failure the console answered with: its stable code and its message. */
export class ApiFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  const token = sessionStorage.getItem(TOKEN_KEY) ?? "";
  const res = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    cache: "no-store",
    credentials: "omit",
  });
  if (!res.ok) {
    let code = "ERR_CONSOLE";
    let message = `the console answered ${res.status}`;
    try {
      const doc = (await res.json()) as { error?: { code?: string; message?: string } };
      code = doc.error?.code ?? code;
      message = doc.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiFailure(code, message, res.status);
  }
  return res;
}

export async function get<T>(path: string): Promise<T> {
  return (await call("GET", path)).json() as Promise<T>;
}

export async function post<T>(path: string, body: unknown = {}): Promise<T> {
  return (await call("POST", path, body)).json() as Promise<T>;
}

export async function cancelJob(id: string): Promise<JobView> {
  return (await call("DELETE", `/api/jobs/${id}`)).json() as Promise<JobView>;
}

export async function getText(path: string): Promise<string> {
  return (await call("GET", path)).text();
}

export async function getBlob(path: string): Promise<Blob> {
  return (await call("GET", path)).blob();
}

/** Polls a job until it ends, calling `onUpdate` with each state. */
export async function followJob<R>(
  job: JobView,
  onUpdate: (j: JobView<R>) => void,
  everyMs = 150,
): Promise<JobView<R>> {
  let j = job as JobView<R>;
  onUpdate(j);
  while (j.state === "running") {
    await new Promise((r) => setTimeout(r, everyMs));
    j = await get<JobView<R>>(`/api/jobs/${job.id}`);
    onUpdate(j);
  }
  return j;
}

/** Saves `content` as a file through the browser's download (no server round trip with the token in a URL). */
export function download(name: string, content: string | Blob, type: string): void {
  const url = URL.createObjectURL(typeof content === "string" ? new Blob([content], { type }) : content);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
