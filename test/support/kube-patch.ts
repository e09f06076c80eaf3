// Patch semantics for the Kubernetes API test server: JSON patch (RFC 6902),
// JSON merge patch (RFC 7386) and the strategic merge patch for the Node
// fields whose lists Kubernetes merges by key (status.conditions and
// status.addresses, both `patchMergeKey: type`).
type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Obj = { [k: string]: Json }

export class PatchError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly reason: string,
  ) {
    super(message)
  }
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return clone(patch)
  const out: Obj = isObj(target) ? clone(target) : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k] ?? null, v)
  }
  return out
}

/** Lists merged by key instead of replaced, keyed by their path from the object root. */
const NODE_MERGE_KEYS: Record<string, string> = { 'status.conditions': 'type', 'status.addresses': 'type' }

export function strategicMergePatch(target: Json, patch: Json, path = ''): Json {
  if (!isObj(patch)) return clone(patch)
  const out: Obj = isObj(target) ? clone(target) : {}
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) throw new PatchError(`strategic merge directive ${k} is not supported by this test server`, 400, 'BadRequest')
    const p = path ? `${path}.${k}` : k
    const key = NODE_MERGE_KEYS[p]
    if (v === null) delete out[k]
    else if (key && Array.isArray(v)) out[k] = mergeList(Array.isArray(out[k]) ? (out[k] as Json[]) : [], v, key, p)
    else out[k] = strategicMergePatch(out[k] ?? null, v, p)
  }
  return out
}

function mergeList(current: Json[], patch: Json[], key: string, path: string): Json[] {
  const out = clone(current)
  for (const item of patch) {
    if (!isObj(item) || typeof item[key] !== 'string') {
      throw new PatchError(`${path}: every element needs the merge key "${key}"`, 400, 'BadRequest')
    }
    const i = out.findIndex((e) => isObj(e) && e[key] === item[key])
    if (item.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1)
      continue
    }
    if (i >= 0) out[i] = strategicMergePatch(out[i] ?? null, item, path)
    else out.push(clone(item))
  }
  return out
}

function pointer(p: string): string[] {
  if (p === '') return []
  if (!p.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(p)}`, 400, 'BadRequest')
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

function parentOf(doc: Json, parts: string[], p: string): { parent: Obj | Json[]; last: string } {
  let cur: Json = doc
  for (const part of parts.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[Number(part)] : isObj(cur) ? cur[part] : undefined
    if (next === undefined) throw new PatchError(`doc is missing path: ${p}`, 422, 'Invalid')
    cur = next
  }
  if (!Array.isArray(cur) && !isObj(cur)) throw new PatchError(`doc is missing path: ${p}`, 422, 'Invalid')
  return { parent: cur, last: parts[parts.length - 1] ?? '' }
}

function getAt(doc: Json, p: string): Json {
  const parts = pointer(p)
  if (parts.length === 0) return doc
  const { parent, last } = parentOf(doc, parts, p)
  const v = Array.isArray(parent) ? parent[Number(last)] : parent[last]
  if (v === undefined) throw new PatchError(`doc is missing path: ${p}`, 422, 'Invalid')
  return v
}

function removeAt(doc: Json, p: string): Json {
  const { parent, last } = parentOf(doc, pointer(p), p)
  const v = getAt(doc, p)
  if (Array.isArray(parent)) parent.splice(Number(last), 1)
  else delete parent[last]
  return v
}

function addAt(doc: Json, p: string, value: Json, replace: boolean): void {
  const { parent, last } = parentOf(doc, pointer(p), p)
  if (replace) getAt(doc, p)
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last)
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new PatchError(`index out of range: ${p}`, 422, 'Invalid')
    parent.splice(i, replace ? 1 : 0, clone(value))
  } else parent[last] = clone(value)
}

export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('json patch body must be an array of operations', 400, 'BadRequest')
  const doc = clone(target)
  for (const op of ops) {
    if (!isObj(op) || typeof op.op !== 'string' || typeof op.path !== 'string') {
      throw new PatchError('every json patch operation needs "op" and "path"', 400, 'BadRequest')
    }
    const { path } = op
    if (op.op === 'add' || op.op === 'replace') {
      if (!('value' in op)) throw new PatchError(`${op.op} operation needs a value`, 400, 'BadRequest')
      addAt(doc, path, op.value ?? null, op.op === 'replace')
    } else if (op.op === 'remove') removeAt(doc, path)
    else if (op.op === 'test') {
      if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op.value)) throw new PatchError(`test failed at ${path}`, 422, 'Invalid')
    } else if (op.op === 'move' || op.op === 'copy') {
      if (typeof op.from !== 'string') throw new PatchError(`${op.op} operation needs "from"`, 400, 'BadRequest')
      const v = op.op === 'move' ? removeAt(doc, op.from) : getAt(doc, op.from)
      addAt(doc, path, v, false)
    } else throw new PatchError(`unknown json patch operation ${JSON.stringify(op.op)}`, 400, 'BadRequest')
  }
  return doc
}
