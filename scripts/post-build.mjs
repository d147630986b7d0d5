// Makes the bundled CLI directly executable (npm "bin" needs the shebang and the x bit).
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
const file = new URL("../dist/main.js", import.meta.url);
let src = readFileSync(file, "utf8");
if (!src.startsWith("#!")) src = "#!/usr/bin/env node\n" + src;
writeFileSync(new URL("../dist/cli.js", import.meta.url), src);
chmodSync(new URL("../dist/cli.js", import.meta.url), 0o755);
