// Bundles the extension and everything it imports from node_modules into dist/extension.js,
// so the .vsix needs no node_modules. `vscode` is provided by the editor at run time.
import { build } from "esbuild";

const production = process.argv.includes("--production");

await build({
  entryPoints: ["src/extension.ts"],
  bundle: true,
  outfile: "dist/extension.js",
  format: "cjs",
  platform: "node",
  target: "node20",
  external: ["vscode"],
  sourcemap: !production,
  minify: production,
  logLevel: "warning",
});
