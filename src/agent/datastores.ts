// Which datastore --datastore names. Each is constructed from the agent's
// configuration and the node facts the agent resolved.
import { EtcdDatastore } from './etcd-datastore.js'
import type { AgentConfig } from './config.js'
import type { Datastore, DatastoreContext } from './datastore.js'
import { FileDatastore } from './file-datastore.js'

export function createDatastore(cfg: AgentConfig, ctx: DatastoreContext): Datastore {
  switch (cfg.datastore) {
    case 'file':
      return new FileDatastore(ctx, cfg.podCidr!, cfg.peersFile)
    case 'etcd':
      return new EtcdDatastore(ctx, cfg.etcd)
  }
}
