import type { AuditSync } from "./audit-sync.js";
import type { EnclaveClient } from "./enclave-client.js";
import type { HostStore } from "./store.js";

/** What every feature plugin is given: the enclave link, the disk, the audit copy's updater. */
export interface HostDeps {
  enclave: EnclaveClient;
  store: HostStore;
  audit: AuditSync;
}
