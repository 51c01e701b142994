// Validates AsyncAPI documents with the official parser (@asyncapi/parser 3.x).
// Usage: node validate_asyncapi.js PARSER_DIR DOCUMENT.json...
// Prints one JSON line per document: {"file", "diagnostics": [{severity, code, message, path}]}.
// Severity 0 is an error, 1 a warning, 2 information, 3 a hint.
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [parserDir, ...files] = process.argv.slice(2);
const load = createRequire(path.join(path.resolve(parserDir), "package.json"));
const { Parser } = load("@asyncapi/parser");

(async () => {
  const parser = new Parser();
  for (const file of files) {
    const { diagnostics } = await parser.parse(fs.readFileSync(file, "utf8"));
    const shown = diagnostics.map((d) => ({
      severity: d.severity,
      code: d.code,
      message: d.message,
      path: d.path.join("."),
    }));
    console.log(JSON.stringify({ file, diagnostics: shown }));
  }
})().catch((error) => {
  console.error(error);
  process.exit(2);
});
