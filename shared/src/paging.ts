import { z } from "zod";

/**
 * Query fields of every paginated list (`GET /api/actions`, `/api/runs`): `limit` (1..500, default 50)
 * and `cursor`, the `next_cursor` of the previous page. Lists page by a monotonic sequence, newest first.
 */
export const PageQueryFields = {
  limit: z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(1).max(500))
    .default(50),
  cursor: z.string().regex(/^\d{1,15}$/, "must be the next_cursor of a previous page").optional(),
};
