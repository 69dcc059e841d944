/**
 * The direct side of the relay measurement, as a process of its own like the host it is compared
 * with (a sender inside the benchmark process would carry that process's grown heap):
 *   node dist/scripts/bench/direct-send.js SOCKET DATASET DIGEST FILE
 * streams FILE to the enclave's ingest endpoint over its unix socket with the host's own client
 * and prints {"seconds": N} once the enclave has answered.
 */
import { createReadStream, statSync } from "node:fs";
import { EnclaveClient, expectOk } from "../../host/enclave-client.js";
import { seconds } from "./timing.js";

const [socketPath, dataset, digest, file] = process.argv.slice(2);
if (!socketPath || !dataset || !digest || !file) {
  process.stderr.write("usage: direct-send SOCKET DATASET DIGEST FILE\n");
  process.exit(2);
}
const enclave = new EnclaveClient({ address: { socketPath } });
try {
  const s = await seconds(async () => {
    const stream = createReadStream(file);
    const path = `/v1/datasets/${dataset}/ingest`;
    expectOk(await enclave.postStream(path, { digest }, stream, statSync(file).size));
  });
  process.stdout.write(`${JSON.stringify({ seconds: s })}\n`);
} finally {
  enclave.close();
}
