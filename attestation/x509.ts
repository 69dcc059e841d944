/**
 * The single entry to @peculiar/x509: it needs a Reflect metadata polyfill loaded first and a
 * WebCrypto provider. Import x509 from here, never from the package directly.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
