// Build the browser bundles into webapp/static/vendor/ (git-ignored; never committed):
//   viewer.js + viewer.css    bpmn-js NavigatedViewer for case diagrams and the heatmap
//   modeler.js + modeler.css  bpmn-js Modeler with the Camunda 7 properties panel
// Fonts referenced by the CSS are copied next to it. Run: node webapp/frontend/build.mjs
import { build } from 'esbuild';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const out = join(root, 'webapp', 'static', 'vendor');

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

await build({
  absWorkingDir: root,
  entryPoints: ['viewer.js', 'modeler.js', 'viewer.css', 'modeler.css'].map((f) => join(here, f)),
  outdir: out,
  entryNames: '[name]',
  assetNames: 'fonts/[name]-[hash]',
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'linked',
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file', '.svg': 'file' },
  logLevel: 'warning'
});

await writeFile(join(out, '.built'), new Date().toISOString() + '\n');
console.log('built webapp/static/vendor/');
