// Writes a TypeScript module whose only statement is the dashboard's JSON, inlined as an object literal,
// `satisfies DashboardJson` (dashboard.ts): tsc then reports a wrong type or an unknown property in it.
// The JSON starts on the module's first line, so tsc's line numbers are the JSON file's.
//
//   node generate.mjs [dashboard.json] [out.ts]
//
// Defaults: ../dashboards/smart-grid.json into generated/smart-grid.ts (gitignored; what tsconfig.json checks).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [source = resolve(here, "../dashboards/smart-grid.json"), out = resolve(here, "generated/smart-grid.ts")] =
  process.argv.slice(2);

const text = readFileSync(source, "utf8").trimEnd();
JSON.parse(text); // JSON, not any TypeScript expression: a syntax error is reported as one.
let types = relative(dirname(resolve(out)), resolve(here, "dashboard")).split("\\").join("/");
if (!types.startsWith(".")) types = `./${types}`;
mkdirSync(dirname(resolve(out)), { recursive: true });
writeFileSync(
  out,
  `import type { DashboardJson } from ${JSON.stringify(types)}; export const dashboard = ${text} satisfies DashboardJson;\n` +
    `// Generated from ${relative(dirname(resolve(out)), resolve(source)).split("\\").join("/")} by generate.mjs: line N is its line N.\n`,
);
