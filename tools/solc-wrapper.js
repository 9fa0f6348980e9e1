#!/usr/bin/env node
// forge cannot download native solc here (no network but package registries), so foundry.toml
// points at this wrapper around solcjs (npm `solc`). forge calls it with `--version` and with
// `--standard-json` (+ --allow-paths/--base-path) and the JSON input on stdin.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solc-wrapper: only --version and --standard-json are supported\n');
  process.exit(2);
}
function flag(name) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : undefined;
}
const basePath = flag('--base-path') || process.cwd();
const includePaths = [];
args.forEach((a, i) => { if (a === '--include-path' && args[i + 1]) includePaths.push(args[i + 1]); });

function findImports(p) {
  const candidates = [path.isAbsolute(p) ? p : path.join(basePath, p), ...includePaths.map((b) => path.join(b, p))];
  for (const c of candidates) {
    try { return { contents: fs.readFileSync(c, 'utf8') }; } catch (_) { /* try next */ }
  }
  return { error: 'File not found: ' + p };
}

const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
