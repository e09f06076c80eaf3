import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { removeTempDirs, tempDir } from './tmp.js'

describe('tempDir', () => {
  it('is removed with its contents by removeTempDirs (which every file runs after its tests)', () => {
    const a = tempDir('pntmp-')
    const b = tempDir('pntmp-')
    writeFileSync(join(a, 'f'), 'x')
    expect(existsSync(a) && existsSync(b)).toBe(true)
    expect(removeTempDirs()).toBeGreaterThanOrEqual(2)
    expect(existsSync(a) || existsSync(b)).toBe(false)
  })
})
