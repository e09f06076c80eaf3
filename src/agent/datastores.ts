// Which datastore --datastore names. Each is constructed from the agent's
// configuration and the node facts the agent resolved.
import { EtcdDatastore } from './etcd-datastore.js'
import type { AgentConfig } from './config.js'
import type { Datastore, DatastoreContext } from './datastore.js'
import { FileDatastore } from './file-datastore.js'

export async function createDatastore(cfg: AgentConfig, ctx: DatastoreContext): Promise<Datastore> {
  switch (cfg.datastore) {
    case 'kubernetes': {
      // loaded only when used: the Kubernetes client costs ~1 s and ~80 MB RSS to import
      const { KubernetesDatastore } = await import('./datastores/kubernetes.js')
      return new KubernetesDatastore(ctx, { kubeconfig: cfg.kubeconfig, nodeIpOverride: cfg.nodeIp })
    }
    case 'file':
      return new FileDatastore(ctx, cfg.podCidr!, cfg.peersFile)
    case 'etcd':
      return new EtcdDatastore(ctx, cfg.etcd)
  }
}
