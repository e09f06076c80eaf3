// One linter for all TypeScript. Besides typescript-eslint's recommended
// rules it enforces the layer order of src/ (docs/design.md, "Where things are"):
//   src/libbpf (FFI) → src/datapath → src/services → src/commands, src/cli, src/agent, … (front doors)
// Each layer imports only from the ones below it; src/errors.ts and src/util
// are leaves anyone may import. src/render (the commands' text output) and
// src/flags (flag sets built from the services' schemas) serve the commands
// and sit beside them. Sizes: no function over 80 lines, no command file
// over 50 (blank lines and comments not counted): split into named steps.
import tseslint from 'typescript-eslint'

/** An import whose path goes into `dir` (relative or not), e.g. '../libbpf/index.js'. */
const into = (dir) => `(^|/)${dir}(/|\\.js$|$)`

const layer = (files, forbidden) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map(([dir, why]) => ({ regex: into(dir), message: why })),
      },
    ],
  },
})

const FRONT_DOORS = ['commands', 'cli', 'render', 'flags', 'agent', 'cni']
const noFrontDoors = FRONT_DOORS.map((d) => [d, `${d}/ is a front door: lower layers never import it`])

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bpf/**', 'scripts/bench/dist/**', 'oclif.manifest.json'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  { files: ['src/**/*.ts'], rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] } },
  // commands are thin: parse, call a service, hand its result to src/render
  { files: ['src/commands/**/*.ts'], rules: { 'max-lines': ['error', { max: 50, skipBlankLines: true, skipComments: true }] } },
  // tests may poke at untyped JSON and fixtures
  { files: ['test/**/*.ts', 'scripts/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  // src/libbpf: the FFI and its typed wrapper; imports nothing of ours but src/errors.ts
  layer(
    ['src/libbpf/**/*.ts'],
    [['datapath', 'src/libbpf is the bottom layer'], ['services', 'src/libbpf is the bottom layer'], ...noFrontDoors],
  ),
  // src/datapath: the only importer of src/libbpf, and only of its public index
  layer(
    ['src/datapath/**/*.ts'],
    [
      ['services', 'src/datapath sits below src/services'],
      ['libbpf/(?!index\\.js$)[^/]+', 'import src/libbpf through src/libbpf/index.js'],
      ...noFrontDoors,
    ],
  ),
  // src/services: the logic every front door calls; no FFI, no front door
  layer(['src/services/**/*.ts'], [['libbpf', 'services reach the kernel through src/datapath'], ...noFrontDoors]),
  // src/cli: oclif plumbing under the commands; knows no services
  layer(
    ['src/cli/**/*.ts'],
    [
      ['libbpf', 'front doors go through src/services (BpfError: import it from src/errors.ts)'],
      ['datapath', 'front doors go through src/services, not src/datapath'],
      ['services', 'src/cli is plumbing for src/commands: commands call the services'],
      ['commands', 'src/cli sits below src/commands'],
    ],
  ),
  // front doors: through src/services only
  layer(
    FRONT_DOORS.filter((d) => d !== 'cli').map((d) => `src/${d}/**/*.ts`),
    [
      ['libbpf', 'front doors go through src/services (BpfError: import it from src/errors.ts)'],
      ['datapath', 'front doors go through src/services, not src/datapath'],
    ],
  ),
  // leaves
  layer(
    ['src/errors.ts', 'src/util/**/*.ts'],
    [['datapath', 'src/util and src/errors.ts are leaves'], ['services', 'src/util and src/errors.ts are leaves'], ...noFrontDoors],
  ),
)
