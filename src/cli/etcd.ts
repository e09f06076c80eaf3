// The etcd connection flags shared by the `cluster` commands (the agent
// takes the same ones, plus its config file).
import * as Flags from '@oclif/core/flags'

export const etcdFlags = {
  'etcd-endpoints': Flags.string({
    description: 'comma-separated etcd URLs',
    env: 'PODNET_ETCD_ENDPOINTS',
    default: 'http://127.0.0.1:2379',
    helpValue: 'URL,…',
  }),
  'etcd-prefix': Flags.string({ description: 'key prefix of the cluster', default: '/podnet.io/network', helpValue: 'PREFIX' }),
  'etcd-ca': Flags.string({ description: 'CA bundle for etcd TLS', helpValue: 'FILE' }),
  'etcd-cert': Flags.string({ description: 'client certificate for etcd', helpValue: 'FILE' }),
  'etcd-key': Flags.string({ description: 'client key for etcd', helpValue: 'FILE' }),
}
