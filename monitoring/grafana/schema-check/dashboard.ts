// The dashboard as its JSON file spells it: @grafana/schema's `Dashboard`, the v1 dashboard model Grafana
// 11.2 provisions (panels, targets, fieldConfig, templating), with one change JSON needs. JSON writes an
// enum member as its value ("absolute", not ThresholdsMode.Absolute), so every string enum becomes the
// union of its values; numeric enums already accept their values. Nothing else is loosened: a value of
// the wrong type or a property the type does not know is still an error.
import type { Dashboard } from "@grafana/schema";

type AsJson<T> = T extends string
  ? `${T}`
  : T extends readonly (infer Item)[]
    ? AsJson<Item>[]
    : T extends object
      ? { [K in keyof T]: AsJson<T[K]> }
      : T;

export type DashboardJson = AsJson<Dashboard>;
