#!/usr/bin/env node
// The published entry point runs the compiled CLI (npm ci runs `prepare`, which builds it).
import '../dist/src/cli/main.js'
