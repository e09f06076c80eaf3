// birdc and its output parser live in src/services/bird.ts (the lab's
// router uses them too); re-exported for the agent's modules.
export * from '../../services/bird.js'
