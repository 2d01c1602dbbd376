#!/usr/bin/env node
// Writes the protocol's JSON Schema to stdout, or to the file named by the first argument.
import { writeFileSync } from "node:fs";
import { protocolJsonSchema } from "../json-schema.js";

const text = `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`;
const out = process.argv[2];
if (out) writeFileSync(out, text);
else process.stdout.write(text);
