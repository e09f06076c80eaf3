// zod for every schema in podnet-bpf, through the v3 API that zod 4 ships as
// 'zod/v3': it imports in ~25 ms where zod 4's own API (with its locale
// files) takes ~60 ms, and every CLI command that reads config or state pays
// that at start-up. The schemas use nothing that v3 lacks.
export { z } from 'zod/v3'
