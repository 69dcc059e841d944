# The untrusted host (host/main.ts) as an OCI image: the relay and ciphertext store that runs
# beside the enclave, never inside it (the enclave is the sealed image, docs/IMAGE.md). Build from
# the repository root; not built by CI:
#   docker build -f deploy/host.Dockerfile -t cleanroom-host .
# NODE_IMAGE is any Debian-based Node.js 20+ image your registry serves.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Install scripts are not needed: tsc compiles, koffi ships its binaries in npm packages.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY attestation attestation
COPY protocol protocol
COPY enclave enclave
COPY host host
COPY client client
COPY scripts scripts
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /opt/cleanroom
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
# The store: blobs, results, the audit copy, partial uploads (keep it on a persistent volume).
RUN mkdir -p /var/lib/cleanroom-host && chown node:node /var/lib/cleanroom-host && chmod 0700 /var/lib/cleanroom-host
VOLUME /var/lib/cleanroom-host
USER node
EXPOSE 8443
# Probes (docs/OPERATORS.md): liveness GET /api/v1/health/live, readiness GET /api/v1/health/ready.
ENTRYPOINT ["node", "dist/host/main.js"]
# Mount the TLS certificate and key at /etc/cleanroom/tls; point --enclave at the enclave
# (vsock:<cid>:7000 beside a Nitro enclave, host:port for an SEV-SNP VM).
CMD ["--listen", "0.0.0.0:8443", "--enclave", "vsock:16:7000", "--store", "/var/lib/cleanroom-host", \
     "--tls-cert", "/etc/cleanroom/tls/cert.pem", "--tls-key", "/etc/cleanroom/tls/key.pem"]
