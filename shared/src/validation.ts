import { z } from "zod";
import { LabrigError, type ErrorCode } from "./errors.js";

/** One line per zod issue, each naming the path that is wrong: `params.timeout_ms: Too small: expected number to be >=1`. */
export function describeZodError(error: z.ZodError, prefix = ""): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter((p) => p !== "").join(".");
      return path === "" ? issue.message : `${path}: ${issue.message}`;
    })
    .join("; ");
}

/** Parses `value` with `schema` or throws a LabrigError (default `validation_failed`) naming every bad field. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  options: { prefix?: string; code?: ErrorCode; what?: string } = {},
): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const what = options.what ?? "request";
  throw new LabrigError(options.code ?? "validation_failed", `Invalid ${what}: ${describeZodError(parsed.error, options.prefix)}`, {
    details: parsed.error.issues.map((i) => ({ path: [options.prefix, ...i.path.map(String)].filter(Boolean).join("."), message: i.message })),
  });
}
