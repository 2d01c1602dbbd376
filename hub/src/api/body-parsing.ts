import { LabrigError } from "@labrig/shared";
import express, { type RequestHandler } from "express";

/** Deepest nesting of arrays and objects a JSON body may have; every body the API takes needs fewer than 10. */
export const MAX_JSON_DEPTH = 32;

const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Nesting depth of a JSON text, read from its bytes (brackets inside strings do not count), so a body
 * of 100 000 nested arrays is refused before anything recursive (schema checks, JSON.stringify when
 * stored) walks it and runs out of stack.
 */
export function jsonDepth(buf: Uint8Array): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACKET || c === OPEN_BRACE) deepest = Math.max(deepest, ++depth);
    else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) depth--;
  }
  return deepest;
}

/**
 * The JSON body parser: at most `limit`, only uncompressed (a compressed body is refused with 415
 * rather than inflated: nothing the hub's clients send needs it, and an invalid one cannot reach the
 * inflater), and at most MAX_JSON_DEPTH deep.
 */
export function jsonBody(limit: string): RequestHandler {
  return express.json({
    limit,
    type: ["application/json", "application/*+json"],
    inflate: false,
    verify: (_req, _res, buf) => {
      const depth = jsonDepth(buf);
      if (depth > MAX_JSON_DEPTH) {
        throw new LabrigError("validation_failed", `The JSON body nests ${depth} levels deep; the hub accepts at most ${MAX_JSON_DEPTH}. Send a flatter body.`);
      }
    },
  });
}
