// Turning text and documents into a validated ForesightConfig, with errors that name the field.
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { ConfigParseError, ConfigValidationError, type ConfigIssue } from "./errors.ts";
import { ForesightConfigSchema, type ForesightConfig } from "./schema.ts";

/** Maps zod issues to `{path, message}`, one per unknown key so each names its own path. */
export function toConfigIssues(issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const i of issues) {
    const base = i.path.map(String);
    if (i.code === "unrecognized_keys") {
      for (const k of i.keys) out.push({ path: [...base, k].join("."), message: "unknown key" });
    } else {
      out.push({ path: base.join("."), message: i.message });
    }
  }
  return out;
}

/** Validates a document (defaults filled in); throws ConfigValidationError naming every bad field. */
export function validateConfig(doc: unknown, source?: string): ForesightConfig {
  const r = ForesightConfigSchema.safeParse(doc ?? {});
  if (!r.success) throw new ConfigValidationError(toConfigIssues(r.error.issues), source);
  return r.data;
}

/**
 * Parses config text. JSON when `format` is "json" (or the source ends in .json), YAML otherwise
 * (YAML also reads JSON). An empty document is `{}`; anything but a mapping at the top is an error.
 */
export function parseConfigText(text: string, source: string, format?: "json" | "yaml"): Record<string, unknown> {
  const asJson = format === "json" || (format === undefined && source.toLowerCase().endsWith(".json"));
  let doc: unknown;
  try {
    doc = asJson ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigParseError(source, (err as Error).message, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigParseError(source, `top level must be a mapping, got ${Array.isArray(doc) ? "a list" : typeof doc}`);
  }
  return doc as Record<string, unknown>;
}
