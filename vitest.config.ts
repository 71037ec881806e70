import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    alias: { mrp2p: fileURLToPath(new URL('./src/index.ts', import.meta.url)) }
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Cluster tests start real processes: running several files at once on a
    // 2-core machine turns timing bounds into noise.
    fileParallelism: false,
    reporters: ['default']
  }
})
