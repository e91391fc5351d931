/** A rule for one field, as written in `private/config/validation.yaml`. */
export interface FieldRule {
  /** JSON type the value must have. */
  type: "string" | "integer" | "number" | "boolean";
  /** Whether the field must be present (not missing or null). Default false. */
  required?: boolean;
  /** Shortest string allowed. */
  min_length?: number;
  /** Longest string allowed. */
  max_length?: number;
  /** Regular expression a string must match. */
  pattern?: string;
  /** Smallest number allowed. */
  min?: number;
  /** Largest number allowed. */
  max?: number;
  /** Message used when the pattern does not match. */
  message?: string;
}

/** The rules file: one rule per accepted field; other fields are dropped. */
export interface ValidationRules {
  fields: Record<string, FieldRule>;
}

/** One problem with one field of the input. */
export interface FieldError {
  field: string;
  message: string;
}

/** The outcome of {@linkcode validate}. */
export type Validated =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; errors: FieldError[] };

const TYPES = new Set(["string", "integer", "number", "boolean"]);

/**
 * Checks that a parsed rules file has the expected shape.
 *
 * @throws {TypeError} Naming the first field whose rule is malformed.
 */
export function checkRules(value: unknown): ValidationRules {
  const fields = (value as { fields?: unknown } | null)?.fields;
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
    throw new TypeError('Validation rules must have a "fields" mapping');
  }
  for (const [name, rule] of Object.entries(fields)) {
    const type = (rule as { type?: unknown } | null)?.type;
    if (typeof type !== "string" || !TYPES.has(type)) {
      throw new TypeError(
        `Rule for "${name}" needs a type of string, integer, number or boolean`,
      );
    }
    const pattern = (rule as FieldRule).pattern;
    if (pattern !== undefined) {
      try {
        new RegExp(pattern);
      } catch (err) {
        throw new TypeError(
          `Rule for "${name}" has a bad pattern "${pattern}"`,
          {
            cause: err,
          },
        );
      }
    }
  }
  return value as ValidationRules;
}

function checkField(value: unknown, rule: FieldRule): string | undefined {
  switch (rule.type) {
    case "string": {
      if (typeof value !== "string") return "must be a string";
      const { min_length: min, max_length: max } = rule;
      if (min !== undefined && value.length < min) {
        return min === 1
          ? "must not be empty"
          : `must be at least ${min} characters`;
      }
      if (max !== undefined && value.length > max) {
        return `must be at most ${max} characters`;
      }
      if (rule.pattern !== undefined && !new RegExp(rule.pattern).test(value)) {
        return rule.message ?? `must match ${rule.pattern}`;
      }
      return undefined;
    }
    case "integer":
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        return `must be ${rule.type === "integer" ? "an integer" : "a number"}`;
      }
      if (rule.type === "integer" && !Number.isInteger(value)) {
        return "must be an integer";
      }
      if (rule.min !== undefined && value < rule.min) {
        return `must be at least ${rule.min}`;
      }
      if (rule.max !== undefined && value > rule.max) {
        return `must be at most ${rule.max}`;
      }
      return undefined;
    }
    case "boolean":
      return typeof value === "boolean" ? undefined : "must be true or false";
  }
}

/**
 * Validates a parsed JSON body against the rules. Every field is checked, so
 * the caller can report all problems at once; fields without a rule are dropped.
 *
 * @example
 * ```ts
 * const result = validate({ name: "Ada" }, rules);
 * if (!result.ok) console.log(result.errors); // [{ field: "email", message: "is required" }]
 * ```
 */
export function validate(input: unknown, rules: ValidationRules): Validated {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return {
      ok: false,
      errors: [{ field: "body", message: "must be a JSON object" }],
    };
  }
  const body = input as Record<string, unknown>;
  const errors: FieldError[] = [];
  const value: Record<string, unknown> = {};
  for (const [field, rule] of Object.entries(rules.fields)) {
    const given = body[field];
    if (given === undefined || given === null) {
      if (rule.required) errors.push({ field, message: "is required" });
      continue;
    }
    const problem = checkField(given, rule);
    if (problem) errors.push({ field, message: problem });
    else value[field] = given;
  }
  return errors.length ? { ok: false, errors } : { ok: true, value };
}
