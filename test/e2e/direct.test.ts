// Issue 4 end-to-end suite on a `podnet-bpf lab` in direct mode (see suite.ts).
import { e2eSuite } from './suite.js'

e2eSuite('direct')
