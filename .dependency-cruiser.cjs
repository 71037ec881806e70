/**
 * The layer rules of src/, checked by `npm test` (docs/architecture.md draws them).
 *
 * Layers, top to bottom: a module may import its own layer and the layers below it, never one above.
 * The pure state machines (election's rules, the scheduler) import neither libp2p nor node's I/O modules,
 * so they run unchanged under the seeded simulations.
 */
const LAYERS = ['cli', 'harness', 'submitter', 'dashboard', 'node', 'history', 'coordinator', 'worker', 'dataset', 'election', 'protocol', 'mapreduce', 'util']

const layerRules = LAYERS.slice(1).map((layer, i) => {
  const above = LAYERS.slice(0, i + 1)
  return {
    name: `layer-${layer}`,
    comment: `src/${layer} sits below ${above.join(', ')}: it must not import them`,
    severity: 'error',
    from: { path: `^src/${layer}/` },
    to: { path: `^src/(${above.join('|')})/` }
  }
})

// Everything under src/ belongs to a layer (or is the package's entry point), so no module escapes the rules.
const unlayered = {
  name: 'unlayered-module',
  comment: `a module in src/ outside the layers (${LAYERS.join(', ')}): add the folder to LAYERS in .dependency-cruiser.cjs`,
  severity: 'error',
  from: { path: '^src/' },
  to: { path: '^src/', pathNot: [`^src/(${LAYERS.join('|')})/`, '^src/index\\.ts$'] }
}

const IO_MODULES = [
  'fs', 'fs/promises', 'net', 'tls', 'dgram', 'dns', 'dns/promises', 'http', 'https', 'http2', 'child_process',
  'cluster', 'worker_threads', 'os', 'process', 'readline', 'stream', 'stream/promises', 'timers', 'timers/promises'
]

const pure = {
  name: 'pure-state-machines',
  comment: 'election (but its gossip adapter) and the scheduler are pure: no libp2p, no node I/O, tested by replaying inputs',
  severity: 'error',
  from: {
    path: ['^src/election/', '^src/coordinator/scheduler[^/]*\\.ts$'],
    // The gossip adapter and the ControlPubSub it drives over gossipsub are the election's one door to libp2p.
    pathNot: ['^src/election/(gossip-adapter|control-pubsub|index)\\.ts$']
  },
  to: {
    dependencyTypesNot: ['type-only'],
    path: [
      '(^|/)node_modules/(libp2p|@libp2p/|@chainsafe/)',
      `^(node:)?(${IO_MODULES.map((m) => m.replace('/', '\\/')).join('|')})$`
    ]
  }
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'a cycle of imports: two modules that cannot be understood (or loaded) one without the other',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true }
    },
    ...layerRules,
    unlayered,
    pure
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } }
  }
}
