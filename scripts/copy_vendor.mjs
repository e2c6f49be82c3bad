// Copy the front-end files the pages load from node_modules into static/vendor.
// Nothing is loaded from a CDN at run time; static/vendor is not committed.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(root, "static", "vendor");
const files = {
  "htmx.min.js": "node_modules/htmx.org/dist/htmx.min.js",
  "echarts.min.js": "node_modules/echarts/dist/echarts.min.js",
};

mkdirSync(vendor, { recursive: true });
for (const [target, source] of Object.entries(files)) {
  const from = join(root, source);
  if (!existsSync(from)) {
    console.error(`missing ${source}: run npm ci first`);
    process.exit(1);
  }
  copyFileSync(from, join(vendor, target));
  console.log(`static/vendor/${target} <- ${source}`);
}
