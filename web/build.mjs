// Bundles the staking web app (web/src) into web/dist: index.html, app.js, app.css.
// The contract ABIs come from the forge artifacts in ../out at build time (one source of truth),
// so `forge build` must have run first. Everything lands in dist: no CDN, works offline.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = process.env.DN_FORGE_OUT ?? join(here, '..', 'out');
const dist = join(here, 'dist');

/** Artifacts whose ABIs the page needs: file name in out/ -> export name in `deepnode:abis`. */
const ARTIFACTS = {
  stakingAbi: 'IStaking',
  tokenAbi: 'DNToken',
  modelRegistryAbi: 'IModelRegistry',
  taskManagerAbi: 'ITaskManager',
  settlementAbi: 'ISettlement',
};

async function loadAbi(name) {
  const path = join(outDir, `${name}.sol`, `${name}.json`);
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`web build: cannot read the forge artifact ${path} (${err.code ?? err.message}); run \`forge build\` in the repository root first`);
  }
  const abi = JSON.parse(text).abi;
  if (!Array.isArray(abi) || abi.length === 0) {
    throw new Error(`web build: ${path} has no ABI; rebuild with \`forge build\``);
  }
  return abi;
}

// `import { stakingAbi } from 'deepnode:abis'` resolves to the ABIs read above.
const abisPlugin = {
  name: 'deepnode-abis',
  setup(b) {
    b.onResolve({ filter: /^deepnode:abis$/ }, (args) => ({ path: args.path, namespace: 'deepnode-abis' }));
    b.onLoad({ filter: /.*/, namespace: 'deepnode-abis' }, async () => {
      const lines = [];
      for (const [exportName, artifact] of Object.entries(ARTIFACTS)) {
        lines.push(`export const ${exportName} = ${JSON.stringify(await loadAbi(artifact))};`);
      }
      return { contents: lines.join('\n'), loader: 'js' };
    });
  },
};

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
const sourcemap = process.env.DN_WEB_SOURCEMAP === '1';
await build({
  entryPoints: { app: join(here, 'src', 'main.ts') },
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap,
  legalComments: 'none',
  outdir: dist,
  plugins: [abisPlugin],
  logLevel: 'warning',
});
await build({
  entryPoints: { app: join(here, 'src', 'app.css') },
  bundle: true,
  minify: true,
  outdir: dist,
  logLevel: 'warning',
});
await copyFile(join(here, 'src', 'index.html'), join(dist, 'index.html'));
console.log(`web build: wrote ${dist}/{index.html,app.js,app.css}`);
