import type { z } from 'zod'

/**
 * The fields of `source` that `schema` declares, copied as they are, unchecked (whoever receives them validates).
 * This is how one shape is cut out of a larger one by the schema's keys, so that a field added to the schema
 * travels with no hand-written copy to update.
 */
export function pickDeclared<S extends z.ZodObject> (schema: S, source: z.output<S>): z.output<S> {
  const picked: Record<string, unknown> = {}
  for (const key of Object.keys(schema.shape)) {
    const value = (source as Record<string, unknown>)[key]
    if (value !== undefined) picked[key] = value
  }
  return picked as z.output<S>
}
