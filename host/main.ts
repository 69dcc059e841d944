/**
 * Process entry:
 *   node dist/host/main.js --listen 127.0.0.1:8080 --enclave 127.0.0.1:7001|unix:/path --store DIR
 *                          [--tls-cert F --tls-key F] [--insecure-http]
 */
import { buildHost } from "./app.js";
import { parseHostArgs } from "./cli.js";

async function main(): Promise<void> {
  const { listen, options } = parseHostArgs(process.argv.slice(2));
  const app = await buildHost(options);
  const stop = () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await app.listen({ host: listen.host, port: listen.port });
}

main().catch((e: unknown) => {
  const { code, message } = e as { code?: string; message?: string };
  // commander has already printed its own usage message for its errors.
  if (!code?.startsWith("commander."))
    process.stderr.write(`cleanroom-host: ${code ?? "error"}: ${message}\n`);
  process.exit(code === "commander.helpDisplayed" || code === "commander.version" ? 0 : 2);
});
