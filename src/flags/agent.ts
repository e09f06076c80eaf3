// The agent command's flags. Each maps to the camelCase key of the agent's
// config (flagsToConfig in src/agent/config.ts); none has an oclif default, so a
// --config file's values win over what is left unset.
import * as Flags from '@oclif/core/flags'
import { DATASTORES } from '../agent/config.js'

const s = (description: string, helpValue?: string) => Flags.string({ description, ...(helpValue ? { helpValue } : {}) })

export const agentFlags = {
  datastore: Flags.string({ description: 'where peers come from', options: [...DATASTORES] }),
  config: s('YAML config file (flags override it)', 'FILE'),
  'node-name': s("this node's name [default: $NODE_NAME, else hostname]", 'NAME'),
  'node-ip': s('underlay IP [default: first IPv4 address of --device]', 'IP'),
  device: s('node NIC [default: eth0]', 'IFNAME'),
  mode: Flags.string({ description: 'datapath mode [default: auto]', options: ['direct', 'vxlan', 'auto'] }),
  'pod-cidr': s("this node's pod CIDR (file datastore)", 'CIDR'),
  kubeconfig: s('kubeconfig file (kubernetes datastore) [default: in-cluster service account]', 'FILE'),
  'peers-file': s('watched YAML list of peers {name, nodeIp, podCidr, mode?} (file datastore)', 'FILE'),
  'etcd-endpoints': s('comma-separated etcd URLs [default: http://127.0.0.1:2379]', 'URL,…'),
  'etcd-prefix': s('key prefix [default: /podnet.io/network]', 'PREFIX'),
  'etcd-ca': s('CA bundle for etcd TLS', 'FILE'),
  'etcd-cert': s('client certificate for etcd', 'FILE'),
  'etcd-key': s('client key for etcd', 'FILE'),
  'lease-ttl': s('lease TTL, e.g. 30s [default: 30s]', 'DURATION'),
  'resync-interval': s('periodic full reconcile [default: 30s]', 'DURATION'),
  listen: s('address of /healthz /readyz /metrics [default: 127.0.0.1:9963]', 'ADDR:PORT'),
  'cni-conf-dir': s('where the CNI conflist is written once ready [default: /etc/cni/net.d]', 'DIR'),
  'log-format': Flags.string({ description: 'log lines [default: text]', options: ['text', 'json'] }),
  routing: Flags.string({
    description: 'peer routes from the datastore or from BGP [default: datastore]',
    options: ['datastore', 'bgp'],
  }),
  'cluster-cidr': s('network of every pod CIDR (BGP import filter; required with --routing bgp --datastore file)', 'CIDR'),
  'bgp-asn': Flags.integer({ description: "this node's AS number [default: 64512]", helpValue: 'N' }),
  'bgp-peer': Flags.string({ description: 'a BGP peer (router, route reflector); repeatable', helpValue: 'ADDRESS:ASN', multiple: true }),
  'bgp-mesh': Flags.boolean({ description: 'iBGP sessions with every other node [default: on]', allowNo: true }),
}
