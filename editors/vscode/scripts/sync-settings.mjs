// Writes package.json's contributes.configuration from src/lib/settings.ts (compiled to out/).
// Run `npm run sync-settings` after changing SETTINGS; a unit test fails while they differ.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { configurationContribution } = require("../out/src/lib/manifest.js");
const file = new URL("../package.json", import.meta.url);
const manifest = JSON.parse(readFileSync(file, "utf8"));
manifest.contributes.configuration = configurationContribution();
writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
console.log("package.json: contributes.configuration updated");
