// The agent's configuration for --datastore kubernetes: NODE_NAME (the
// DaemonSet's downward API) as the default node name, kubeconfig only there.
import { afterEach, describe, expect, it, vi } from 'vitest'

const saved = process.env.NODE_NAME
afterEach(() => {
  if (saved === undefined) delete process.env.NODE_NAME
  else process.env.NODE_NAME = saved
  vi.resetModules()
})

/** The config module as a fresh agent process loads it, with NODE_NAME as given. */
async function freshConfig(nodeName: string | undefined) {
  if (nodeName === undefined) delete process.env.NODE_NAME
  else process.env.NODE_NAME = nodeName
  vi.resetModules()
  return import('../../../src/agent/config.js')
}

describe('agent configuration for the kubernetes datastore', () => {
  it('takes the node name from NODE_NAME when neither --node-name nor the file gives one', async () => {
    const { loadAgentConfig } = await freshConfig('worker-7')
    expect(loadAgentConfig({ datastore: 'kubernetes' }).nodeName).toBe('worker-7')
    expect(loadAgentConfig({ datastore: 'kubernetes', nodeName: 'flag-wins' }).nodeName).toBe('flag-wins')
  })

  it('falls back to the host name without NODE_NAME', async () => {
    const { loadAgentConfig } = await freshConfig(undefined)
    const { hostname } = await import('node:os')
    expect(loadAgentConfig({ datastore: 'kubernetes' }).nodeName).toBe(hostname().toLowerCase())
  })

  it('accepts --kubeconfig for the kubernetes datastore only', async () => {
    const { loadAgentConfig } = await freshConfig('n1')
    expect(loadAgentConfig({ datastore: 'kubernetes', kubeconfig: '/etc/kubernetes/kubelet.conf' }).kubeconfig).toBe(
      '/etc/kubernetes/kubelet.conf',
    )
    expect(() => loadAgentConfig({ datastore: 'file', podCidr: '10.244.1.0/24', kubeconfig: '/x' })).toThrow(
      /kubeconfig.*only the kubernetes datastore/s,
    )
  })
})
