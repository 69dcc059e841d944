/**
 * The partner console, for the command that serves it (client/cli/commands/console.ts) and the
 * demo: a session for one party's client and the local server for its page.
 */
import { spawn } from "node:child_process";
import type { CleanroomClient } from "../sdk/client.js";
import { type ConsoleServer, startConsoleServer } from "./server.js";
import { ConsoleSession } from "./session.js";

export type { ConsoleServer } from "./server.js";

export interface ConsoleOptions {
  client: CleanroomClient;
  /** Folder the parties' contract approvals are exchanged in. */
  approvalsDir: string;
  /** Folder the Data page offers files from. */
  dataDir: string;
  contractFile?: string;
  version: string;
  /** 0 (default): a free port. */
  port?: number;
  /** The built page; default the one shipped beside this module. */
  assetsDir?: string;
}

export function startConsole(o: ConsoleOptions): Promise<ConsoleServer> {
  const session = new ConsoleSession({
    client: o.client,
    approvalsDir: o.approvalsDir,
    dataDir: o.dataDir,
    version: o.version,
    ...(o.contractFile ? { contractFile: o.contractFile } : {}),
  });
  return startConsoleServer({
    session,
    ...(o.port !== undefined ? { port: o.port } : {}),
    ...(o.assetsDir ? { assetsDir: o.assetsDir } : {}),
  });
}

/**
 * Opens `url` in the system's browser when there is one to ask (xdg-open, open, explorer);
 * `onFail` hears when none could be started, so the caller can point at the printed address.
 */
export function openBrowser(url: string, onFail: (why: string) => void): void {
  const command =
    process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  try {
    const child = spawn(command, [url], { stdio: "ignore", detached: true });
    child.on("error", () => onFail(`could not start ${command}`));
    child.unref();
  } catch {
    onFail(`could not start ${command}`);
  }
}
