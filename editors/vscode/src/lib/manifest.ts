/**
 * The `contributes.configuration` block of package.json, derived from SETTINGS so the settings
 * the user sees and the ones sent to the server cannot drift apart (a unit test compares them).
 */

import { SETTINGS, type SettingSpec } from "./settings";

function property(spec: SettingSpec): Record<string, unknown> {
  const json: Record<string, unknown> = {
    type: spec.type === "string[]" ? "array" : spec.type === "headers" ? "object" : spec.type,
    default: spec.default,
    scope: spec.scope,
    markdownDescription: spec.description,
  };
  if (spec.type === "string[]") json.items = { type: "string" };
  if (spec.type === "headers") json.additionalProperties = { type: "string" };
  if (spec.enum) json.enum = spec.enum;
  if (spec.minimum !== undefined) {
    if (spec.minimum > 0 && spec.minimum < 1) json.exclusiveMinimum = 0;
    else json.minimum = spec.minimum;
  }
  return json;
}

export function configurationContribution(): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    properties[`enclave.${spec.key}`] = property(spec);
  }
  properties["enclave.trace.server"] = {
    type: "string",
    enum: ["off", "messages", "verbose"],
    default: "off",
    scope: "window",
    markdownDescription: "Log the LSP messages between VS Code and the server to the Enclave output.",
  };
  return { title: "Enclave", properties };
}
