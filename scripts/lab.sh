#!/usr/bin/env bash
# README's main job: on a fresh Debian 12 machine, as root, install what is
# needed, bring up the local multi-node lab (3 nodes in network namespaces,
# 2 pods each; node3 behind a router so `auto` picks VXLAN for it and direct
# routing between node1 and node2; a 3-member etcd cluster and a podnet-bpf
# agent on every node that leases its pod CIDR and learns its peers), show
# cross-node pod traffic on both paths, a node joining and leaving with the
# time every peer took to converge, and say how to look around and tear down.
# `./scripts/lab.sh --datastore static` runs the lab without etcd and agents; `--routing bgp` makes the
# router namespace a BIRD top-of-rack router that learns every pod CIDR over BGP, so node3 is reached
# directly through it instead of over VXLAN. Extra arguments go to `lab up`
# (e.g. ./scripts/lab.sh --nodes 4 --mode vxlan). Everything stays inside
# network namespaces named pnlab-<lab>-…; nothing is changed in the host's.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

PN=(node "$PWD/bin/run.js")
LAB="${PODNET_LAB:-demo}"
export PODNET_LAB="$LAB"
pn() { echo "+ podnet-bpf $*"; "${PN[@]}" "$@"; }

# a lab of the same name from an earlier run is replaced
"${PN[@]}" lab down --name "$LAB" >/dev/null
echo
pn lab up --name "$LAB" "$@"

last=$("${PN[@]}" lab status --name "$LAB" --json | node -e '
  const s = JSON.parse(require("fs").readFileSync(0, "utf8")).labs[0];
  const n1 = s.nodes[0];
  const direct = n1.paths.find((p) => p.encap === "direct" && p.via !== "router");
  // the peer in the other subnet: over VXLAN, or (--routing bgp) directly through the router
  const vxlan = n1.paths.find((p) => p.encap === "vxlan" || p.via === "router");
  const pod = (name) => { const n = s.nodes.find((x) => x.name === name); return n.pods[0] ? n.pods[0].name : n.name };
  const src = n1.pods[0] ? n1.pods[0].name : n1.name;
  console.log([src, direct ? pod(direct.peer) : "", vxlan ? pod(vxlan.peer) : ""].join(" "));')
read -r SRC DIRECT VXLAN <<<"$last"

echo
echo "== cross-node pod traffic"
[ -n "$DIRECT" ] && pn lab ping "$SRC" "$DIRECT" && echo
[ -n "$VXLAN" ] && pn lab ping "$SRC" "$VXLAN" && echo
pn lab exec node1 -- "${PN[@]}" routes list
echo
if "${PN[@]}" lab status --name "$LAB" --json | grep -q '"datastore": "etcd"'; then
  echo "== the agents: leases in etcd, a node joining and leaving"
  pn lab exec node1 -- "${PN[@]}" cluster nodes
  echo
  pn lab add-node --name "$LAB" --pods 1
  echo
  added=$("${PN[@]}" lab status --name "$LAB" --json | node -e 'const s = JSON.parse(require("fs").readFileSync(0, "utf8")).labs[0]; console.log(s.nodes.at(-1).name)')
  pn lab remove-node "$added" --name "$LAB"
  echo
fi

hint=""
[ "$LAB" != demo ] && hint=" (add --name $LAB to the lab commands)"
cat <<EOT
== look around$hint
  podnet-bpf lab status                                  # nodes, pods, IPs, path per peer, agents and leases
  podnet-bpf lab logs node1                              # node1's agent log (etcd1..etcd3: the etcd members; router: its BIRD with --routing bgp)
  podnet-bpf lab add-node / lab remove-node NODE         # a node joins / leaves; prints each peer's convergence time
  podnet-bpf lab exec node1 -- podnet-bpf cluster nodes  # the leases in etcd (node, node IP, pod CIDR, expiry)
  podnet-bpf lab ping node1-pod1 node3-pod2              # pod → pod, with the path it takes
  podnet-bpf lab ping node2 node1-pod1                   # node → pod (also pod → node)
  podnet-bpf lab exec node1-pod1 -- ip addr show eth0    # a shell command in a pod
  podnet-bpf lab exec node1 -- podnet-bpf routes list    # podnet-bpf on a node (pin dir preset)
  podnet-bpf lab exec node1 -- podnet-bpf endpoints list
  podnet-bpf lab exec node1 -- tc filter show dev eth0 ingress
  podnet-bpf lab exec underlay -- tcpdump -ni n1 -c 6    # node1's underlay port: pod IPs or UDP 8472
  nsenter --net=/run/netns/pnlab-$LAB-node1 podnet-bpf routes list --pin-dir /sys/fs/bpf/pnlab-$LAB-node1
(podnet-bpf is linked into /usr/local/bin by scripts/setup.sh; it runs this checkout)

== tear down
  podnet-bpf lab down$([ "$LAB" != demo ] && echo " --name $LAB")          # idempotent; also cleans up after a crashed lab up
EOT
