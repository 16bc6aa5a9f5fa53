// Validates an OpenAPI document against the OpenAPI schema of its version, $refs resolved.
import SwaggerParser from "@apidevtools/swagger-parser";

const file = process.argv[2];
try {
  const api = await SwaggerParser.validate(file);
  const ops = Object.values(api.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  console.log(`${file}: valid OpenAPI ${api.openapi}, ${ops} operations`);
} catch (e) {
  console.error(`${file}: not a valid OpenAPI document: ${e.message}`);
  process.exit(1);
}
