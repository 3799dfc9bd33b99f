// Precompresses the built site's bundle (ServeDir then serves the .br/.gz files as is) and prints
// its size raw, gzip and brotli. Exits non-zero when the hydrate bundle (JS + WASM) is over the
// brotli budget. Usage: node scripts/bundle.mjs [site-root]
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const BUDGET_BROTLI_BYTES = 250 * 1000;
const pkg = path.join(process.argv[2] ?? "target/site", "pkg");
if (!fs.existsSync(pkg)) {
  console.error(`bundle: ${pkg} does not exist; build the site first (cargo leptos build --release)`);
  process.exit(1);
}

const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
let hydrateBrotli = 0;
const rows = [];
for (const name of fs.readdirSync(pkg).sort()) {
  if (!/\.(js|wasm|css)$/.test(name)) continue;
  const file = path.join(pkg, name);
  const raw = fs.readFileSync(file);
  const gz = zlib.gzipSync(raw, { level: 9 });
  const br = zlib.brotliCompressSync(raw, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
  fs.writeFileSync(`${file}.gz`, gz);
  fs.writeFileSync(`${file}.br`, br);
  if (!name.endsWith(".css")) hydrateBrotli += br.length;
  rows.push([name, kb(raw.length), kb(gz.length), kb(br.length)]);
}
console.log("file".padEnd(24), "raw".padStart(10), "gzip".padStart(10), "brotli".padStart(10));
for (const [name, raw, gz, br] of rows) {
  console.log(name.padEnd(24), raw.padStart(10), gz.padStart(10), br.padStart(10));
}
console.log(`hydrate bundle (js + wasm), brotli: ${kb(hydrateBrotli)} of a ${kb(BUDGET_BROTLI_BYTES)} budget`);
if (hydrateBrotli > BUDGET_BROTLI_BYTES) {
  console.error("bundle: the hydrate bundle is over its brotli budget");
  process.exit(1);
}
