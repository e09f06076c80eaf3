// The etcd connection flags shared by the `cluster` commands (the agent
// takes the same ones, plus its config file).
import * as Flags from '@oclif/core/flags'
import { EtcdConfigSchema } from '../agent/config.js'
import { formatZodError } from '../services/config.js'
import type { EtcdConnection } from '../services/etcd.js'

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

export function etcdConnection(f: {
  'etcd-endpoints': string
  'etcd-prefix': string
  'etcd-ca'?: string
  'etcd-cert'?: string
  'etcd-key'?: string
}): EtcdConnection {
  const r = EtcdConfigSchema.safeParse({
    endpoints: f['etcd-endpoints']
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    prefix: f['etcd-prefix'],
    ca: f['etcd-ca'],
    cert: f['etcd-cert'],
    key: f['etcd-key'],
  })
  if (!r.success) throw formatZodError(r.error, 'etcd flags')
  return r.data
}
