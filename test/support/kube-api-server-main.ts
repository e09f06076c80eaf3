// Runs the Kubernetes API test server in its own process, so a test can put it
// in a network namespace (nsenter --net=… vite-node this file). Options come in
// PODNET_KUBE_TEST_SERVER (JSON); the parent drives it over the IPC channel
// (see RemoteKubeApiTestServer).
import { KubeApiTestServer, type NodeSpec, type TestServerOptions } from './kube-api-server.js'

const opts = JSON.parse(process.env.PODNET_KUBE_TEST_SERVER ?? '{}') as TestServerOptions
const server = new KubeApiTestServer(opts)

type Call = { id: number; method: string; args: unknown[] }
const methods: Record<string, (...a: never[]) => unknown> = {
  createNode: (n: NodeSpec) => server.createNode(n),
  setPodCidr: (name: string, cidr: string) =>
    server.updateNode(name, (n) => {
      n.spec = { ...n.spec, podCIDR: cidr, podCIDRs: [cidr] }
    }),
  setLabel: (name: string, key: string, value: string) =>
    server.updateNode(name, (n) => {
      n.metadata.labels = { ...n.metadata.labels, [key]: value }
    }),
  deleteNode: (name: string) => server.deleteNode(name),
  getNode: (name: string) => server.getNode(name) ?? null,
  compact: () => server.compact(),
  cutWatches: () => server.cutWatches(),
  watchCount: () => server.watchCount,
  resourceVersion: () => server.resourceVersion,
  log: () => server.log,
  down: () => server.stop(),
  up: () => server.start(),
}

process.on('message', (m: Call) => {
  void (async () => {
    try {
      const fn = methods[m.method]
      if (!fn) throw new Error(`unknown method ${m.method}`)
      process.send!({ id: m.id, result: (await fn(...(m.args as never[]))) ?? null })
    } catch (e) {
      process.send!({ id: m.id, error: (e as Error).message })
    }
  })()
})
process.on('disconnect', () => process.exit(0))

await server.start()
process.send!({ id: 0, result: { port: server.port } })
