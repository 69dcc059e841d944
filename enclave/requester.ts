/**
 * Who an enclave API call came from, once the enclave knows it: the party whose signed request
 * verified, or the dataset owner whose grant an ingest found. server.ts opens one scope per HTTP
 * request; when the call fails, the error's detail is sealed to that party (http-errors.ts).
 * Before the enclave knows (a bad envelope, a signature that does not verify, an unsigned call
 * from the host) there is no requester, and the answer carries the code and a fixed message only.
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface Requester {
  party: string;
  /** The party's age recipient, from the contract. */
  recipient: string;
  /** Nonce of the signed request a failure answers (for an ingest, its grant's). */
  inReplyTo: string;
  /** The dataset the call concerns, when there is one. */
  dataset?: string;
}

export interface RequestScope {
  requester?: Requester;
}

const storage = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` with `scope` as the scope `identifyRequester` fills. */
export function inRequestScope<T>(scope: RequestScope, fn: () => Promise<T>): Promise<T> {
  return storage.run(scope, fn);
}

/** Records the requester of the current call; outside a scope (in-process callers) a no-op. */
export function identifyRequester(requester: Requester): void {
  const scope = storage.getStore();
  if (scope) scope.requester = requester;
}
