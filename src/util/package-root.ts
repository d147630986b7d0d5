// The installed package's root folder (the nearest package.json above a module), so built assets
// (dist/, build/, proto/) are found the same way from the sources, the bundle and its chunks.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** No package.json above the module. */
export class PackageRootError extends Error {
  override name = "PackageRootError";
}

/** Folder of the nearest package.json above `from` (a module URL). */
export function packageRootOf(from: string): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new PackageRootError(`no package.json above ${fileURLToPath(from)}`);
    dir = up;
  }
}
