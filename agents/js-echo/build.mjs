// Builds a JavaScript agent into a component of the `agent` world:
//   node build.mjs SOURCE.js WIT_DIR OUT.wasm
// Every WASI feature of the JavaScript engine is left out (no stdio,
// clocks, randomness or fetch): the sandbox grants none of them beyond
// what the world imports.
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

const [source, wit, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node build.mjs SOURCE.js WIT_DIR OUT.wasm");
  process.exit(2);
}
const { component } = await componentize({
  sourcePath: source,
  witPath: wit,
  worldName: "agent",
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await mkdir(dirname(out), { recursive: true });
await writeFile(out, component);
console.log(`${out}: ${(component.length / 1048576).toFixed(1)} MiB`);
