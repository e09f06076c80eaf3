// A setup file of both vitest projects: every test file removes the temp
// dirs it made with tempDir(), after its last test.
import { afterAll } from 'vitest'
import { removeTempDirs } from './tmp.js'

afterAll(() => {
  removeTempDirs()
})
