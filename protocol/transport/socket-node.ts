/**
 * Stream sockets by file descriptor, for the families Node's `net` cannot open (AF_VSOCK: libuv
 * refuses to guess the handle type of such an fd, so `new net.Socket({ fd })` throws). The fd is
 * made with socket()/bind()/connect() through koffi and then handed to a libuv pipe handle, whose
 * uv_pipe_open takes any stream-socket fd: from there reads, writes, accepts and close are libuv's
 * own epoll path, and callers get an ordinary evented net.Socket. Node-only; PROTOCOL.md §7.
 *
 * Blocking calls: connect() runs through koffi's asynchronous form (one libuv worker for at most
 * the kernel's connect timeout, 2 s for vsock); nothing else here blocks.
 */
import net from "node:net";
import { constants } from "node:os";
import { AF_UNIX, AF_VSOCK, decodeSockaddr, encodeSockaddr, type SocketTarget } from "./address.js";
import { TransportError, type TransportFailure } from "./errors.js";

export type { SocketTarget } from "./address.js";

const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const DEFAULT_BACKLOG = 511;

/** The part of node's internal pipe_wrap binding used here (what net.Server itself drives). */
interface PipeHandle {
  open(fd: number): number | undefined;
  listen(backlog: number): number;
  close(callback?: () => void): void;
  onconnection: ((status: number, client?: PipeHandle) => void) | null;
}
interface PipeWrap {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number; SERVER: number };
}

type CallbackFn = (...args: unknown[]) => void;
interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint32Array): number;
  close(fd: number): number;
  connectAsync(fd: number, addr: Uint8Array, len: number, done: CallbackFn): void;
  errno(): number;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));
const errnoName = (n: number): string => ERRNO_NAMES.get(n) ?? "EUNKNOWN";

let libcPromise: Promise<Libc> | undefined;

/** koffi and the four libc calls, loaded on first use so importing this module costs nothing. */
function libc(): Promise<Libc> {
  libcPromise ??= (async () => {
    let koffi: typeof import("koffi");
    try {
      koffi = await import("koffi");
    } catch (e) {
      throw new TransportError("unsupported", "transport: the koffi FFI module cannot be loaded", {
        cause: e,
      });
    }
    // The process's own symbols: these come from whatever libc node runs on (glibc or musl).
    const lib = koffi.load(null);
    const connect = lib.func("int connect(int fd, const void *addr, uint32_t len)");
    return {
      socket: lib.func("int socket(int domain, int type, int protocol)"),
      bind: lib.func("int bind(int fd, const void *addr, uint32_t len)"),
      getsockname: lib.func("int getsockname(int fd, _Out_ uint8_t *addr, _Inout_ uint32_t *len)"),
      close: lib.func("int close(int fd)"),
      connectAsync: (fd, addr, len, done) => connect.async(fd, addr, len, done),
      errno: () => koffi.errno(),
    } satisfies Libc;
  })();
  // A failed load is not cached: the next call tries again.
  libcPromise.catch(() => {
    libcPromise = undefined;
  });
  return libcPromise;
}

function pipeWrap(): PipeWrap {
  return (process as unknown as { binding(name: string): PipeWrap }).binding("pipe_wrap");
}

function familyOf(t: SocketTarget): number {
  return t.family === "vsock" ? AF_VSOCK : AF_UNIX;
}

function failure(reason: TransportFailure, message: string, errno: number): TransportError {
  const detail = errnoName(errno);
  // No such family in this kernel: a different fact from "nothing there".
  const unsupported = detail === "EAFNOSUPPORT" || detail === "EPROTONOSUPPORT";
  return new TransportError(unsupported ? "unsupported" : reason, message, { detail });
}

function openSocket(c: Libc, target: SocketTarget, reason: TransportFailure): number {
  const fd = c.socket(familyOf(target), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure(reason, "transport: socket() failed", c.errno());
  return fd;
}

/**
 * A libuv pipe handle that owns `fd` from here on (closing the handle closes the fd). On failure
 * the fd stays the caller's to close.
 */
function adopt(fd: number, type: "SOCKET" | "SERVER"): PipeHandle {
  const { Pipe, constants: kinds } = pipeWrap();
  const handle = new Pipe(kinds[type]);
  let status: number;
  try {
    status = handle.open(fd) ?? 0;
  } catch {
    status = -1;
  }
  if (status !== 0) {
    handle.close();
    throw new TransportError("unsupported", "transport: libuv refused the socket");
  }
  return handle;
}

function fromHandle(handle: PipeHandle): net.Socket {
  return new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
}

/** Connects to `target`; rejects with TransportError (reason "connect" or "unsupported"). */
export async function connectSocket(target: SocketTarget): Promise<net.Socket> {
  const addr = encodeSockaddr(target);
  const c = await libc();
  const fd = openSocket(c, target, "connect");
  try {
    const [rc, errno] = await new Promise<[number, number]>((resolve, reject) => {
      c.connectAsync(fd, addr, addr.length, (err, result) =>
        // koffi restores the worker thread's errno around this callback.
        err ? reject(err) : resolve([result as number, c.errno()]),
      );
    });
    if (rc !== 0) throw failure("connect", "transport: connect() failed", errno);
  } catch (e) {
    c.close(fd);
    throw e instanceof TransportError
      ? e
      : new TransportError("connect", "transport: connect() failed", { cause: e });
  }
  try {
    return fromHandle(adopt(fd, "SOCKET"));
  } catch (e) {
    c.close(fd); // a failed adopt leaves the fd to us
    throw e;
  }
}

export interface SocketListener {
  /** The bound address as the kernel reports it (the chosen port when asked for VMADDR_PORT_ANY). */
  address: SocketTarget;
  /** Stops accepting and closes the listening fd; connections already accepted stay open. */
  close(): Promise<void>;
}

/**
 * Binds and listens on `target`, calling `onConnection` with each accepted connection. A unix path
 * must not exist yet (the caller removes a stale socket).
 */
export async function listenSocket(
  target: SocketTarget,
  onConnection: (socket: net.Socket) => void,
  opts: { backlog?: number } = {},
): Promise<SocketListener> {
  const addr = encodeSockaddr(target);
  const c = await libc();
  const fd = openSocket(c, target, "listen");
  let handle: PipeHandle | undefined;
  try {
    if (c.bind(fd, addr, addr.length) !== 0) throw failure("listen", "transport: bind() failed", c.errno());
    const name = new Uint8Array(addr.length);
    const len = new Uint32Array([name.length]);
    if (c.getsockname(fd, name, len) !== 0)
      throw failure("listen", "transport: getsockname() failed", c.errno());
    const address = decodeSockaddr(name.subarray(0, Math.min(len[0]!, name.length)));
    handle = adopt(fd, "SERVER");
    // A failed accept (e.g. EMFILE) loses that one connection; the listener carries on.
    handle.onconnection = (status, client) => {
      if (status === 0 && client) onConnection(fromHandle(client));
    };
    const status = handle.listen(opts.backlog ?? DEFAULT_BACKLOG);
    if (status !== 0) throw failure("listen", "transport: listen() failed", -status);
    const server = handle;
    let closed: Promise<void> | undefined;
    return {
      address,
      close: () => {
        closed ??= new Promise<void>((resolve) => server.close(resolve));
        return closed;
      },
    };
  } catch (e) {
    if (handle) handle.close();
    else c.close(fd);
    throw e;
  }
}
