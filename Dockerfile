# podnet-bpf image: the agent (DaemonSet in deploy/podnet-bpf.yaml), the CLI
# and the CNI plugin, from the npm pack tarball, on Debian bookworm.
#
#   npm ci && npm run build && npm pack        # → podnet-bpf-<version>.tgz
#   docker build -t podnet-bpf:0.1.0 .
#
# Not built or tested in this repository's CI: no container engine runs there
# (see README, "Install on Kubernetes").

# ffi-napi and ref-napi compile a native addon at install: build tools only here
FROM node:20-bookworm AS build
WORKDIR /build
COPY podnet-bpf-*.tgz ./
RUN npm install --global --omit=dev --no-audit --no-fund ./podnet-bpf-*.tgz

FROM node:20-bookworm-slim
# libbpf1: the datapath's loader (through ffi); iproute2: devices and routes
RUN apt-get update \
 && apt-get install --yes --no-install-recommends libbpf1 iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/lib/node_modules/podnet-bpf /usr/local/lib/node_modules/podnet-bpf
RUN ln -s /usr/local/lib/node_modules/podnet-bpf/bin/run.js /usr/local/bin/podnet-bpf
ENTRYPOINT []
CMD ["podnet-bpf", "agent", "--config", "/etc/podnet-bpf/agent.yaml"]
